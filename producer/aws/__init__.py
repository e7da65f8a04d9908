"""AWS clients other than Firehose (CloudFormation) behind small facades."""
