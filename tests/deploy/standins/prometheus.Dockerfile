# Stand-in for prom/prometheus:v2.53.4: Debian's Prometheus (2.42), as nobody, storing in
# /prometheus, with wget for the compose file's health check.
FROM synthgen-standin/services-rootfs:bookworm
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
WORKDIR /prometheus
USER nobody
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
