"""Shared test support: real clients (python-socketio, socket.io-client under Node) driven from trio tests."""
