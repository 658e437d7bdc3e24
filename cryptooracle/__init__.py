import os

from cryptooracle import tflogs

# Before anything imports TensorFlow: its native start-up notices would drown every
# command's output (see tflogs; -v 2 or CRYPTOORACLE_TF_LOGS=1 shows them).
tflogs.install()
# TensorFlow's Python-side C++ logging after start-up: errors only, unless set.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cryptooracle.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
