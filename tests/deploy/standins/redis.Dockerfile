# Stand-in for redis:7-bookworm: Debian's Redis 7.0, run as the redis user with protected
# mode off (the official image's default: the stack's network is its protection).
FROM synthgen-standin/services-rootfs:bookworm
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
