"""Users' own event schemas: `kind: template` (fields in YAML) and `kind: kdg` (a Kinesis Data
Generator record template), compiled once into generators that draw from seeded value pools."""
