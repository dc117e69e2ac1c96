# A TCP port free on 127.0.0.1 right now, for a test peer to listen on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
