"""``python -m airflow_provider_sage200.emulator``: run the Sage 200 emulator."""

from __future__ import annotations

import argparse

from airflow_provider_sage200.emulator.cli import add_arguments, run_from_args


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_sage200.emulator", description=__doc__)
    add_arguments(parser)
    run_from_args(parser.parse_args())


if __name__ == "__main__":
    main()
