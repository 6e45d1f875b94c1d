#!/usr/bin/env python
"""Soak fsck.vexfs and the read-only tools with thousands of hostile images.

    python tests/fuzz/soak.py --cases 5000            # seeds 0..4999
    python tests/fuzz/soak.py --first 1234 --cases 1  # one case again
    python tests/fuzz/soak.py --write-case 1234 out.img

Each seed picks a base image (fresh and populated, extended and kernel layout, and the real
kernel module's image when shared/ is here) and a mutation of its metadata (bit flips,
random bytes, interesting integers, with or without resealed checksums), or random bytes
as the whole image, or random bytes behind a valid superblock. Each case runs fsck -n,
dump / ls -l / stat 1, fsck -y, fsck -n, the tools again: in-process, and every
--cli-every'th case through the installed CLIs as subprocesses as well.

It prints a summary of exit codes and every failure with its seed. Exit status 1 when a
case crashed, hung, printed a traceback, exited with a code out of range or -n wrote.
Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import collections
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.fuzzlib import BASE_NAMES, apply, check_image, get_base, random_mutation, repro_snippet  # noqa: E402


def first_line(text: str) -> str:
    head = text.strip().splitlines()
    return head[0] if head else text


def signature(failure: str) -> str:
    """Failures grouped by what failed and the last line of a traceback."""
    lines = failure.strip().splitlines()
    head = lines[0]
    if len(lines) > 1 and "Traceback" in failure:
        tail = [line for line in lines if line.strip()][-1]
        where = [line.strip() for line in lines if line.strip().startswith("File ")]
        return f"{head.split(':')[0]}: {tail} @ {where[-1] if where else '?'}"
    return head[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--cli-every", type=int, default=100,
                        help="also run the installed CLIs on every Nth case (0: never)")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--bases", default=None, help="directory for the base images")
    parser.add_argument("--write-case", nargs=2, metavar=("SEED", "IMAGE"),
                        help="write the image of one seed and exit")
    parser.add_argument("--memory-limit", type=int, default=4096, help="MiB of address space (0: none)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    if args.memory_limit:
        limit = args.memory_limit << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    workdir = Path(args.bases or tempfile.mkdtemp(prefix="vexfs-soak-"))
    bases = {name: base for name in BASE_NAMES if (base := get_base(name, workdir)) is not None}

    if args.write_case:
        seed, target = int(args.write_case[0]), Path(args.write_case[1])
        m = random_mutation(seed, bases)
        target.write_bytes(apply(bases[m.base], m))
        print(m)
        return 0

    image = workdir / "case.img"
    exit_codes: collections.Counter = collections.Counter()
    by_base: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    failures: dict[str, list[int]] = collections.defaultdict(list)
    examples: dict[str, tuple[int, str, str]] = {}
    incomplete: list[tuple[int, str]] = []
    refusals: collections.Counter = collections.Counter()
    cli_cases = cli_mismatch = 0
    started = time.monotonic()
    for seed in range(args.first, args.first + args.cases):
        m = random_mutation(seed, bases)
        data = apply(bases[m.base], m)
        image.write_bytes(data)
        outcome = check_image(image, timeout=args.timeout)
        by_base[m.base] += 1
        kinds[m.kind + ("+reseal" if m.reseal else "")] += 1
        exit_codes["n=%s y=%s n=%s" % outcome.codes] += 1
        problems = list(outcome.failures)
        if args.cli_every and seed % args.cli_every == 0:
            cli_cases += 1
            image.write_bytes(data)
            by_cli = check_image(image, subprocesses=True, timeout=args.timeout)
            problems += [f"[cli] {f}" for f in by_cli.failures]
            if by_cli.codes != outcome.codes:
                cli_mismatch += 1
                problems.append(f"[cli] fsck exit codes {by_cli.codes} in subprocesses, "
                                f"{outcome.codes} in-process")
        for failure in problems:
            sig = signature(failure)
            if seed not in failures[sig]:
                failures[sig].append(seed)
            examples.setdefault(sig, (seed, repr(m), failure))
        for run in outcome.runs:
            if run.code == 8 and run.what.startswith("fsck"):
                reason = run.output.strip().splitlines()[-1] if run.output.strip() else "?"
                refusals[f"{run.what}: {re.sub(r'0x[0-9a-fA-F]+|[0-9]+', 'N', reason.split(': ', 1)[-1])[:110]}"] += 1
        if outcome.incomplete:
            incomplete.append((seed, outcome.incomplete))
        if args.verbose or problems:
            print(f"seed {seed}: {m.base} {m.kind} {m.region} codes={outcome.codes} "
                  f"{'FAIL' if problems else ''}", flush=True)
        done = seed - args.first + 1
        if done % 500 == 0:
            print(f"... {done} cases, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    elapsed = time.monotonic() - started
    print(f"\n=== {args.cases} cases (seeds {args.first}..{args.first + args.cases - 1}) in {elapsed:.0f} s; "
          f"{cli_cases} also through the CLIs ({cli_mismatch} with other exit codes) ===")
    print("bases:", dict(sorted(by_base.items())))
    print("mutations:", dict(sorted(kinds.items())))
    print("fsck exit codes (first -n, -y, second -n):")
    for codes, count in exit_codes.most_common():
        print(f"  {count:6d}  {codes}")
    print("\nexit 8 (operational error), by message:")
    for reason, count in refusals.most_common(25):
        print(f"  {count:6d}  {reason}")
    print(f"\nfailures (crash, hang, traceback, exit code out of range, -n wrote): "
          f"{sum(len(s) for s in failures.values())} in {len(failures)} kinds")
    for sig, seeds in sorted(failures.items(), key=lambda item: -len(item[1])):
        seed, mutation, text = examples[sig]
        print(f"\n--- {len(seeds)}x {sig}\n    seeds: {seeds[:20]}{' ...' if len(seeds) > 20 else ''}")
        print(f"    first: seed {seed}: {mutation}")
        print("    " + "\n    ".join(text.strip().splitlines()[-12:]))
    print(f"\n-y exited 0/1 but the next -n did not exit 0: {len(incomplete)} cases")
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for seed, text in incomplete:
        lines = [line for line in text.splitlines()[1:] if "? no" in line]
        key = re.sub(r"[0-9]+", "N", re.sub(r"\([^)]*\)|'[^']*'", "", lines[0]))[:100] if lines \
            else first_line(text)
        groups[key].append(seed)
    for key, seeds in sorted(groups.items(), key=lambda item: -len(item[1])):
        print(f"  {len(seeds):5d}x {key}   seeds {seeds[:10]}")
    if failures:
        seed = examples[next(iter(failures))][0]
        m = random_mutation(seed, bases)
        print(f"\nrepro of seed {seed}: python tests/fuzz/soak.py --write-case {seed} case.img, or\n"
              + repro_snippet(m))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
