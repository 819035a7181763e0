# Stand-in for python:3.12-slim-bookworm: Debian bookworm's Python (3.11) with venv and
# pip, as `python`. The machine's CA bundle replaces the image's: pip reaches the package
# index here through a TLS-intercepting proxy whose CA only the host trusts.
FROM synthgen-standin/python-rootfs:bookworm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DEFAULT_TIMEOUT=180
CMD ["python"]
