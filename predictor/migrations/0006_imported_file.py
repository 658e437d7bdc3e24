"""The table of imported candle files: `import_stocks --if-present` skips unchanged ones."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("predictor", "0005_candle_interval_seconds"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImportedFile",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "path",
                    models.TextField(
                        help_text="Absolute path, symbolic links resolved.", unique=True
                    ),
                ),
                ("given_path", models.TextField(help_text="The path as the import was given it.")),
                ("size", models.BigIntegerField(help_text="Bytes.")),
                (
                    "mtime",
                    models.DateTimeField(help_text="The file's modification time when imported."),
                ),
                ("sha256", models.CharField(max_length=64)),
                ("imported_at", models.DateTimeField()),
                ("rows", models.BigIntegerField()),
                ("inserted", models.BigIntegerField()),
                ("duplicates", models.BigIntegerField()),
                ("conflicts", models.BigIntegerField()),
                ("replaced", models.BigIntegerField()),
            ],
        ),
    ]
