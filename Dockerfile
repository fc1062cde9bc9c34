# A static ib in an image of its own: no shell, no libc. It starts as root only to give /data
# to PUID:PGID (default 65532:65532) and then runs as that user, as NAS users expect:
#   docker build -t ib .
#   docker run -d -p 8080:8080 -v ib-data:/data ib
#   docker run -d -p 8080:8080 -e PUID=1000 -e PGID=1000 -v /volume1/ib:/data ib
#   docker exec -u 1000 <container> /ib server token show
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X ib/cmd.Version=${VERSION}" -o /out/ib . \
 && mkdir -p /out/data /out/tmp && chmod 1777 /out/tmp && chown 65532:65532 /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/ib /ib
COPY --from=build /out/tmp /tmp
COPY --from=build --chown=65532:65532 /out/data /data
ENV IB_CONFIG_DIR=/data/config PUID=65532 PGID=65532
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/ib"]
CMD ["server", "serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data/ib", "--log-format", "json"]
