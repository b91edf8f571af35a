# blendnet on Debian: Blender, bubblewrap and FFmpeg from Debian, Node 24
# from the npm registry, blendnet in /opt/blendnet, all installed by
# scripts/install.sh, the same script a VPS runs (docs/deploy.md).
#
#   docker build -t blendnet .
#   docker run -d --name blendnet-worker -p 4001:4001 \
#     -v blendnet-data:/var/lib/blendnet blendnet
#
# The default command is a worker on port 4001; any other command works
# too: `docker run --rm blendnet status --bootstrap ...`,
# `docker run -d -p 4001:4001 -v blendnet-relay:/var/lib/blendnet blendnet relay`.
FROM debian:bookworm-slim

COPY . /usr/src/blendnet
RUN /usr/src/blendnet/scripts/install.sh --prefix /opt/blendnet --bin-dir /usr/local/bin \
    && rm -rf /usr/src/blendnet /root/.npm /var/lib/apt/lists/* \
    && useradd --system --user-group --create-home --home-dir /var/lib/blendnet \
       --shell /usr/sbin/nologin blendnet

# Keys (identity, swarm key) and the worker's cache live in one volume.
ENV BLENDNET_CONFIG_DIR=/var/lib/blendnet/config \
    XDG_CACHE_HOME=/var/lib/blendnet/cache
VOLUME /var/lib/blendnet
USER blendnet
WORKDIR /var/lib/blendnet
EXPOSE 4001

ENTRYPOINT ["blendnet"]
CMD ["worker", "--listen", "/ip4/0.0.0.0/tcp/4001", "--work-dir", "/var/lib/blendnet/worker", "--no-mdns"]
