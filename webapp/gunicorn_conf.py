"""gunicorn's settings (`gunicorn --config python:webapp.gunicorn_conf`): the product's logging."""

from core.logging_setup import logging_config

# gunicorn applies this in the arbiter and in every worker, its own loggers included.
logconfig_dict = logging_config()
