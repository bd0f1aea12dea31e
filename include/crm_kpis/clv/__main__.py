"""`python -m crm_kpis.clv fit --cdnow ../shared/data/cdnow/CDNOW_sample.txt --json OUT`

Fits BG/NBD and Gamma-Gamma on a CDNOW transaction file (the sample or the master file), with the
calibration period of Fader, Hardie & Lee (2005) unless told otherwise, and writes the parameters
and the fits' diagnostics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from crm_kpis.clv import bgnbd, gamma_gamma, rfm

#: The papers' calibration: the 39 weeks to 30 September 1997.
CDNOW_CALIBRATION_END = date(1997, 9, 30)


def fit_cdnow(path: str, calibration_end: date = CDNOW_CALIBRATION_END) -> dict[str, object]:
    started = time.perf_counter()
    summary = rfm.summarise(rfm.read_cdnow(path), calibration_end)
    counts = bgnbd.fit(summary.x, summary.t_x, summary.T)
    spend = gamma_gamma.fit(summary.x, summary.zbar)
    return {
        "bgnbd": counts.params, "gamma_gamma": spend.params,
        "diagnostics": {"bgnbd": {k: v for k, v in counts.as_dict().items() if k != "params"},
                        "gamma_gamma": {k: v for k, v in spend.as_dict().items() if k != "params"},
                        "calibration_end": calibration_end.isoformat(), "customers": len(summary.x),
                        "seconds": round(time.perf_counter() - started, 3)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.clv", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit BG/NBD and Gamma-Gamma on a CDNOW file")
    fit.add_argument("--cdnow", required=True, help="CDNOW_sample.txt or CDNOW_master.txt")
    fit.add_argument("--calibration-end", type=date.fromisoformat, default=CDNOW_CALIBRATION_END,
                     help=f"last day of the calibration period (default {CDNOW_CALIBRATION_END}, as in the paper)")
    fit.add_argument("--json", help="write the result here (default: print it)")
    args = parser.parse_args(argv)
    if not Path(args.cdnow).is_file():
        print(f"no such file: {args.cdnow}", file=sys.stderr)
        return 2
    result = fit_cdnow(args.cdnow, args.calibration_end)
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(f"parameters written to {args.json}")
    else:
        print(text)
    converged = all(result["diagnostics"][m]["converged"] for m in ("bgnbd", "gamma_gamma"))  # type: ignore[index]
    return 0 if converged else 1


if __name__ == "__main__":
    sys.exit(main())
