import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) drowns command output;
# errors still show. Set TF_CPP_MIN_LOG_LEVEL=0 to see it all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cryptooracle.celery import app as celery_app

__all__ = ["celery_app"]
