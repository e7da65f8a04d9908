"""The only code that speaks Firehose: the aiobotocore client, the lean PutRecordBatch path,
wire forms and API limits."""
