# Copyright (c) mmitpn contributors. All rights reserved.
"""iTPN's ablations at small scale on the CPU, over seeds: plans, configs,
runs, the record, probes, verdicts and reports. Nothing in mmitpn, tools/ or
configs/ imports this package."""
