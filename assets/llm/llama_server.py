"""llama.cpp's server (the xllamacpp wheel) on 127.0.0.1 for keel's real-model tests and
benchmarks. Usage: python llama_server.py GGUF PORT N_CTX N_PARALLEL [CHAT_TEMPLATE_FILE]

Serves until stdin reaches end of file: the parent holds the pipe, so the server goes away
with it even when the parent is killed and never cleans up."""
import os
import sys

import xllamacpp


def main():
    gguf, port, n_ctx, n_parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = n_ctx * n_parallel  # llama.cpp splits the context between its slots
    params.n_parallel = n_parallel
    params.use_jinja = True
    params.offline = True
    if len(sys.argv) > 5:
        with open(sys.argv[5], encoding="utf-8") as f:
            params.chat_template = f.read()
    server = xllamacpp.Server(params)  # returns once it listens; serves while referenced
    print("listening", flush=True)
    sys.stdin.read()
    # Out at once: a graceful stop first finishes the generation in flight (seconds to
    # minutes on 2 cores), and there is nothing to flush.
    os._exit(0)


if __name__ == "__main__":
    main()
