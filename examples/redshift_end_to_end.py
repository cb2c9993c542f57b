"""The original scenario on Amazon Redshift: train on one table, score a bigger one, write back.

1. train a model from a Redshift table (read through one UNLOAD to S3);
2. score a bigger Redshift table on a Dask cluster: the workers read the UNLOAD's Parquet files
   from S3 by themselves;
3. write the scores back to Redshift: each worker stages its partition on S3 and loads it with
   COPY, in one transaction with its ledger row, so a killed worker or a resumed run writes every
   row exactly once; the scores table appears, whole, at the end.

Run it against a cluster (URLs percent-encoded; the staging bucket must be in the cluster's
region and the IAM role attached to the cluster, with read/write access to the bucket)::

    python examples/redshift_end_to_end.py \\
        'redshift://me@cluster.example:5439/dev?table=public.flights_2013&staging=s3://bucket/tmp&iam_role=arn:aws:iam::123456789012:role/skfleet' \\
        'redshift://me@cluster.example:5439/dev?table=public.flights&staging=s3://bucket/tmp&iam_role=arn:aws:iam::123456789012:role/skfleet' \\
        'redshift://me@cluster.example:5439/dev?table=public.flight_scores&staging=s3://bucket/tmp&iam_role=arn:aws:iam::123456789012:role/skfleet' \\
        --store s3://bucket/models --engine tcp://scheduler:8786

The test suite runs :func:`run` against the Redshift stand-in, with a worker killed mid-write
(``tests/data/redshift/test_end_to_end.py``).
"""

from __future__ import annotations

import argparse

import skfleet


def run(
    train_url: str,
    score_url: str,
    out_url: str,
    *,
    store: str,
    engine: str | object = "dask:local",
    target: str = "late",
    key: str = "id",
    name: str = "delays",
    partition_rows: int | None = None,
    if_exists: str = "replace",
):
    """Train ``name`` on ``train_url``, score ``score_url`` into ``out_url``; returns both results."""
    trained = skfleet.train(
        "logistic", train_url, target=target, keys=[key], name=name, store=store, report=False
    )
    scored = skfleet.predict(
        name,
        score_url,
        out_url,
        store=store,
        engine=engine,
        if_exists=if_exists,
        partition_rows=partition_rows,
    )
    return trained, scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_url")
    parser.add_argument("score_url")
    parser.add_argument("out_url")
    parser.add_argument("--store", required=True)
    parser.add_argument("--engine", default="dask:local")
    parser.add_argument("--target", default="late")
    parser.add_argument("--key", default="id")
    args = parser.parse_args()
    trained, scored = run(
        args.train_url,
        args.score_url,
        args.out_url,
        store=args.store,
        engine=args.engine,
        target=args.target,
        key=args.key,
    )
    print(
        f"trained {trained.name}; scored {scored.rows_out:,} rows in {scored.partitions} partitions"
    )


if __name__ == "__main__":
    main()
