"""Spark jobs that turn raw data into dataset folders (see `dataset` for the contract).

Shared parts: `options` (the options base), `splits` (the one split rule), `publish` (staging,
reject limit, manifest, `_SUCCESS`, commit), `faults` (test-only fault injection) and
`example_proto` (the Example encoder). Each kind of data is a sub-package: `images`, `tables`.
"""
