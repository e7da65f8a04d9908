"""The embedded local Firehose: a real HTTP endpoint on 127.0.0.1 speaking the Firehose API
(producer.local.server.LocalFirehose)."""
