"""The run files' text made rows, without pandas: the metrics files (`jsonl`,
`jsonl_parsers`), the worker logs (`worker_logs`, with the suites' lines in `suites`),
and a run's compact columnar file of both (`compact`), which its node writes when an
attempt ends and the collector reads instead of the text."""
