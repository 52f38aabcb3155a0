"""List a dataset's versions, roll back to one, or vacuum the files of versions no longer kept (no Spark).

python jobs/versions.py --data DATASET                        # number, time, parent, operation, records, files
python jobs/versions.py --data DATASET --rollback 3           # a new version whose content is version 3's
python jobs/versions.py --data DATASET --vacuum --keep 2      # what would go (dry run); --yes deletes it
python jobs/versions.py --data DATASET --write-indexes        # <shard>.idx beside each shard, a new version names them
python jobs/versions.py --data DATASET --tfds                 # TFDS metadata of the current version (no new version)
"""

from __future__ import annotations

import argparse
import sys

from dataset.errors import DatasetError, OptionError
from dataset.publishing import rollback
from dataset.record_index import index_version
from dataset.tfds_metadata import write_current_metadata
from dataset.vacuum import DEFAULT_MIN_AGE_S, plan_vacuum, vacuum
from dataset.versions import Version, all_versions, public_url
from jobs.errors import reporting_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="versions", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder written by a conversion job")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--rollback", type=int, metavar="N", help="commit version N's content as a new version")
    action.add_argument("--vacuum", action="store_true", help="delete files no kept version lists (dry run)")
    action.add_argument(
        "--write-indexes",
        action="store_true",
        help="write each shard's record index (<shard>.idx, for the tfrecord package and DALI) and commit a "
        "version that names them (shards are not rewritten)",
    )
    action.add_argument(
        "--tfds",
        action="store_true",
        help="write the current version's TFDS metadata (dataset_info.json, features.json, labels) for "
        "tfds.builder_from_directory; no shard is rewritten and no version is committed",
    )
    parser.add_argument("--keep", type=int, default=1, metavar="K", help="--vacuum: keep the K newest versions")
    parser.add_argument(
        "--min-age-hours",
        type=float,
        default=DEFAULT_MIN_AGE_S / 3600,
        help="--vacuum: files no version lists go only when their run wrote nothing for this long",
    )
    parser.add_argument("--yes", action="store_true", help="--vacuum: delete (without it, only print)")
    return parser


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """`--version N` of every job that reads a dataset (dest `data_version`)."""
    parser.add_argument(
        "--version",
        dest="data_version",
        type=int,
        metavar="N",
        help="dataset version to read (default: the current one; jobs/versions.py --data DATASET lists them)",
    )


def version_line(version: Version, current: int) -> str:
    """One version: number, time, parent, operation, records per split, files added/removed, shards."""
    info = version.info
    operation = info.operation + (f" of {info.rollback_of}" if info.rollback_of else "")
    records = " ".join(f"{name}={split.num_records}" for name, split in sorted(version.manifest.splits.items()))
    shards = sum(len(split.files) for split in version.manifest.splits.values())
    mark = "*" if version.number == current else " "
    parent = "-" if info.parent is None else str(info.parent)
    return (
        f"{mark}{version.number:>4}  {info.committed_at}  parent {parent:>4}  {operation:<14}  {records}  "
        f"+{len(info.added)} -{len(info.removed)} files  {shards} shards"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        shown = public_url(args.data)
        if args.rollback is not None:
            version = rollback(args.data, args.rollback)
            print(f"version {version.number} of {shown} is version {args.rollback}'s content (nothing deleted)")
        elif args.write_indexes:
            version, count = index_version(args.data)
            if version is None:
                print(f"every shard of {shown} has its index already; nothing committed")
            else:
                print(f"version {version.number} of {shown} names {count} new shard indexes (shards unchanged)")
        elif args.tfds:
            version, refusal = write_current_metadata(args.data)
            if refusal is not None:
                raise DatasetError(refusal)
            print(f"version {version.number} of {shown}: TFDS metadata written; tfds.builder_from_directory({shown!r})")
        elif args.vacuum:
            if args.min_age_hours < 0:
                raise OptionError(f"--min-age-hours must be 0 or more, got {args.min_age_hours}")
            plan = plan_vacuum(args.data, args.keep, args.min_age_hours * 3600)
            if args.yes:
                vacuum(plan)
            print(plan.text(deleted=args.yes))
        else:
            versions = all_versions(args.data)
            print(f"{shown}: {len(versions)} versions (* current)")
            for version in versions:
                print(version_line(version, versions[-1].number))
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
