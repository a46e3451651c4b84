"""Kafka in and out of the ledger (kafka-python, Avro with Confluent framing).

``codec`` (framing, record encoding/decoding), ``kafka`` (clients, reading a partition's
tail), ``dead_letters`` (``<topic>.dlq``, exactly once across crashes), ``consumer``
(``obc-ledger consume``), ``producer`` (``obc-ledger produce``), ``decisions``
(``obc-ledger publish-decisions``). The ledger's domain imports nothing from here.
"""
