#!/bin/sh
# Regenerate the SAMPLE self-signed certificate in docker/nginx/tls/ (or in the directory
# given as the first argument). SAMPLE ONLY: the committed key is public, so nobody can
# trust this certificate; it exists so that `docker compose up` works before you have a
# real one. Put your own certificate (from your CA or ACME) in docker/nginx/tls/ as
# cert.pem (full chain) and key.pem instead. docs/operations.md, "TLS certificate".
#
#   sh docker/nginx/make-sample-cert.sh [DIR] [HOSTNAME]
set -eu
dir=${1:-$(dirname "$0")/tls}
host=${2:-idp.example.test}
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -days 3650 -keyout "$dir/key.pem" -out "$dir/cert.pem" \
  -subj "/O=Mynagate SAMPLE - do not trust/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 644 "$dir/cert.pem" "$dir/key.pem"  # read by nginx's uid 101 through the bind mount
echo "sample certificate for $host written to $dir (valid 10 years; never use it for real)"
