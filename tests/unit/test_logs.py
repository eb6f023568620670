"""metamon.logs: one --log_level for metamon's and poke-env's loggers (issue 15, item 11)."""

from __future__ import annotations

import argparse
import io
import logging

import pytest

import metamon.logs as logs
from metamon.rl import train


@pytest.fixture(autouse=True)
def restore_logging():
    saved = (logs._poke_env_level, logs._brief, logging.getLogger("metamon").level,
             list(logging.getLogger("metamon").handlers), logging.getLogger("poke-env").level)
    yield
    logs._poke_env_level, logs._brief = saved[0], saved[1]
    logging.getLogger("metamon").setLevel(saved[2])
    logging.getLogger("metamon").handlers[:] = saved[3]
    logging.getLogger("poke-env").setLevel(saved[4])


def _player_logger(name):
    """A logger set up the way poke-env's client sets up a player's: one stderr handler."""
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    return logger, handler


def test_flag_and_levels():
    parser = argparse.ArgumentParser()
    logs.add_log_level_argument(parser)
    assert parser.parse_args([]).log_level == "quiet"
    assert parser.parse_args(["--log_level", "debug"]).log_level == "debug"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log_level", "loud"])
    with pytest.raises(ValueError, match="log level must be one of quiet, debug"):
        logs.configure_logging("loud")

    logs.configure_logging("quiet")
    assert logging.getLogger("metamon").level == logging.WARNING
    assert logging.getLogger("poke-env").level == logging.ERROR and logs.poke_env_level() == logging.ERROR
    logs.configure_logging("info")
    assert logging.getLogger("metamon").level == logging.INFO and logs.poke_env_level() == logging.INFO


def test_quiet_player_loggers_drop_warnings_keep_errors_on_one_line_and_feed_other_handlers():
    logs.configure_logging("quiet")
    logger, handler = _player_logger("QuietPlayer123")
    seen = []
    forwarder = logging.Handler(level=logging.WARNING)
    forwarder.emit = seen.append  # like the env's popup forwarder
    logger.addHandler(forwarder)
    logs.apply_poke_env_level(logger)

    logger.warning("Unmanaged move message format received - cleaned up message %s", ["x"])
    try:
        raise ConnectionError("no close frame received or sent")
    except ConnectionError as error:
        logger.exception(error)
    printed = handler.stream.getvalue()
    assert "Unmanaged" not in printed
    assert "ERROR - no close frame received or sent" in printed and "Traceback" not in printed
    assert [r.levelno for r in seen] == [logging.WARNING, logging.ERROR]  # other handlers see everything
    assert seen[1].exc_info is not None  # and the traceback stays on the record


def test_a_chosen_level_is_applied_as_is():
    logs.configure_logging("warning")
    logger, handler = _player_logger("LoudPlayer123")
    logs.apply_poke_env_level(logger)
    logger.warning("Unmanaged move message format received")
    try:
        raise ConnectionError("gone")
    except ConnectionError:
        logger.exception("gone")
    printed = handler.stream.getvalue()
    assert "Unmanaged move message format received" in printed and "Traceback" in printed


def test_nothing_changes_before_configure_logging():
    logs._poke_env_level = None
    logger, handler = _player_logger("UntouchedPlayer123")
    logs.apply_poke_env_level(logger)
    assert logger.level == logging.NOTSET and handler.level == logging.NOTSET


def test_train_reads_log_level_beside_its_config_fields():
    """``train`` parses ``--log_level`` apart from its TrainConfig flags, so ``--log`` (wandb)
    and ``--log_level`` do not shadow each other."""
    flags = ["--run_name", "x", "--save_dir", "runs", "--model_gin_config", "tiny_agent", "--train_gin_config", "il"]
    config, level = train._parse([*flags, "--log", "--log_level", "debug"])
    assert config.log is True and level == "debug"
    config, level = train._parse(flags)
    assert config.log is False and level == "quiet"
    with pytest.raises(SystemExit) as stop:
        train.main([*flags, "--log_level", "loud"])
    assert stop.value.code == 2
