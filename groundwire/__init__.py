"""Operator tools on top of the service: the `groundwire` command, its HTTP clients, the
supervisor of `groundwire up`, the embedded servers, evaluation, migrations and analyst grants."""
