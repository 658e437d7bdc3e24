from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("predictor", "0003_candle_composite_primary_key")]

    operations = [
        migrations.AddField(
            model_name="market",
            name="candles_token",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="Replaced with a random value by every candle write: cached reads of "
                "this market's candles are keyed by it, so they can never be stale.",
                max_length=32,
            ),
        ),
    ]
