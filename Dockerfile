# cc-relay in an empty image: the static binary, one config file, nothing else — no
# shell, no libc, no CA bundle (the Mozilla roots are compiled in; private CAs come
# from server.upstream_ca_file or CC_RELAY_CA_FILE).
#
# This file does not compile anything: build the binary on the host first, then copy
# it in (the image is ~4 MB):
#   scripts/build-static.sh            # -> target/static/cc-relay
#   docker build -t cc-relay .
#   docker run -p 8787:8787 -e CC_RELAY_API_KEY=... -e ANTHROPIC_API_KEY=... cc-relay
# Your own config: -v $PWD/config.yaml:/etc/cc-relay/config.yaml:ro
# tests/static_binary.rs rebuilds this image's file tree in a chroot and runs it.
FROM scratch

COPY target/static/cc-relay /cc-relay
COPY deploy/docker-config.yaml /etc/cc-relay/config.yaml

# No /etc/passwd in scratch: a numeric user. It owns nothing in the image, so the
# binary and config stay read-only to it (`docker run --read-only` works too).
USER 65532:65532
EXPOSE 8787

# /health needs no credential; `health --config` finds the port in the same config
# the server reads, so a changed port or a mounted config keeps the check right.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/cc-relay", "health", "--config", "/etc/cc-relay/config.yaml"]

# SIGTERM drains in-flight streams for server.drain_timeout_ms (30 s by default):
# stop with `docker stop -t 35` (Docker's default 10 s would cut long streams).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/cc-relay"]
CMD ["serve", "--config", "/etc/cc-relay/config.yaml"]
