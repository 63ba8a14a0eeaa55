#!/usr/bin/env bash
# Makes the test control plane's credentials in DIR, once: a CA, the API server's serving
# certificate (SAN 127.0.0.1, localhost and the in-cluster names), its client certificate for the
# kubelets, the service-account key pair, and one admin bearer token in group system:masters. Existing files are kept.
set -euo pipefail
DIR=$1
mkdir -p "$DIR"
cd "$DIR"
umask 077

if [ ! -s ca.crt ] || [ ! -s ca.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=chaoskit-test-ca" 2>/dev/null
  rm -f apiserver.crt kubelet-client.crt
fi
if [ ! -s apiserver.crt ] || [ ! -s apiserver.key ]; then
  cat > apiserver.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EXT
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
    -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
  rm -f apiserver.csr
fi
# The API server's client certificate for the kubelets (exec, logs): in system:masters, so the
# kubelet's webhook authorizer lets it through.
if [ ! -s kubelet-client.crt ] || [ ! -s kubelet-client.key ]; then
  openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr \
    -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' \
    > kubelet-client.ext
  openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -out kubelet-client.crt -days 3650 -extfile kubelet-client.ext 2>/dev/null
  rm -f kubelet-client.csr
fi
if [ ! -s sa.key ] || [ ! -s sa.pub ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi
if [ ! -s admin.token ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > admin.token
fi
printf 'Authorization: Bearer %s\n' "$(cat admin.token)" > auth.header
# token,user,uid,"groups"
printf '%s,admin,admin,"system:masters"\n' "$(cat admin.token)" > tokens.csv
chmod 644 ca.crt
