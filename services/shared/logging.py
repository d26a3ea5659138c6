"""structlog configuration: JSON outside a terminal, one canonical line per unit of work.

Never bind personal data or free text from reports (descriptions, names, notes) to a
logger; bind ids, ward codes, topic, partition and offset.

Libraries (aiokafka, faust, uvicorn) log through the standard library; their records are
rendered by the same structlog renderer, so every line a service writes is one JSON object.
faust's worker installs its own logging: pass it `logging_config(...)`.
"""

from __future__ import annotations

import logging
import logging.config
import sys

import structlog


def _json(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def _renderer(fmt: str):  # a structlog processor
    if _json(fmt):
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def _timestamper():
    return structlog.processors.TimeStamper(fmt="iso", utc=True)


def logging_config(level: str = "INFO", fmt: str = "auto") -> dict:
    """dictConfig for the standard library: one stderr handler rendering through structlog."""
    level = level.upper()
    library_level = logging.getLevelName(max(logging.WARNING, logging.getLevelName(level)))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(fmt)],
                "foreign_pre_chain": [
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    _timestamper(),
                    structlog.processors.format_exc_info,
                ],
            }
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "structlog"}
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": library_level} for name in ("aiokafka", "kafka")},
    }


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _timestamper(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _renderer(fmt),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_config(level, fmt))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
