"""The benchmark's runner: roomactors against python-socketio and Node's socket.io,
same workload, same machine, same run. Entry point: ``bench/run``."""
