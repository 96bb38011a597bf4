#!/bin/sh
# Provenance of the DER certificates embedded by `cargo xtask gen` (xtask/src/gen/certs.rs).
# Run once with OpenSSL 3.0 from this directory; the .der files are committed so the
# generator stays deterministic (fresh keys would change every capture byte-for-byte).
# The generated captures are stamped 2025-06-02; validity dates below are chosen against that:
# valid, expired, expiring within 30 days, self-signed RSA-1024/SHA-1, self-signed name mismatch.
set -eu
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# `sh make-certs.sh expiring-7d` makes only expiring-7d.der and lab-ca.der (added for issue 6,
# the capture xtask/src/gen/expiring_soon.rs writes), leaving the others untouched: the
# issuing CA's key was not kept, so this leaf has its own throwaway CA. Valid 2025-03-06 ..
# 2025-06-05: under 3 days left at the captures' 2025-06-02 08:00.
if [ "${1:-}" = expiring-7d ]; then
  cat > "$W/lab.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
database = $W/index.txt
new_certs_dir = $W
serial = $W/serial
policy = p
default_md = sha256
unique_subject = no
[ p ]
commonName = supplied
organizationName = optional
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:ris.hospital.example
CNF
  : > "$W/index.txt"
  echo 2001 > "$W/serial"
  lab() { openssl ca -config "$W/lab.cnf" -batch -notext "$@" 2>/dev/null; }
  for k in ca leaf; do openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/$k.key" 2>/dev/null; done
  openssl req -new -key "$W/ca.key" -subj "/O=Hospital Example/CN=Hospital Example Lab CA" -out "$W/ca.csr"
  lab -selfsign -keyfile "$W/ca.key" -in "$W/ca.csr" -extensions root \
    -startdate 20250101000000Z -enddate 20300101000000Z -out "$W/ca.pem"
  openssl req -new -key "$W/leaf.key" -subj "/O=Hospital Example/CN=ris.hospital.example" -out "$W/leaf.csr"
  lab -cert "$W/ca.pem" -keyfile "$W/ca.key" -in "$W/leaf.csr" -extensions leaf \
    -startdate 20250306000000Z -enddate 20250605000000Z -out "$W/leaf.pem"
  openssl x509 -in "$W/leaf.pem" -outform DER -out expiring-7d.der
  openssl x509 -in "$W/ca.pem" -outform DER -out lab-ca.der
  ls -l expiring-7d.der lab-ca.der
  exit 0
fi
cat > "$W/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
dir = $W
database = $W/index.txt
new_certs_dir = $W
serial = $W/serial
policy = p
default_md = sha256
unique_subject = no
[ p ]
commonName = supplied
organizationName = optional
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ issuing ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:*.hospital.example,DNS:hospital.example
[ device ]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost
[ legacy ]
basicConstraints = CA:FALSE
CNF
: > "$W/index.txt"
echo 1001 > "$W/serial"
ca() { openssl ca -config "$W/ca.cnf" -batch -notext "$@" 2>/dev/null; }
rsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:"$2" -out "$W/$1.key" 2>/dev/null; }
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/$1.key" 2>/dev/null; }
csr() { openssl req -new -key "$W/$1.key" -subj "$2" -out "$W/$1.csr"; }
der() { openssl x509 -in "$W/$1.pem" -outform DER -out "$1.der"; }

rsa root 2048; csr root "/O=Hospital Example/CN=Hospital Example Root CA"
ca -selfsign -keyfile "$W/root.key" -in "$W/root.csr" -extensions root \
   -startdate 20200101000000Z -enddate 20400101000000Z -out "$W/root.pem"
rsa issuing 2048; csr issuing "/O=Hospital Example/CN=Hospital Example Issuing CA 1"
ca -cert "$W/root.pem" -keyfile "$W/root.key" -in "$W/issuing.csr" -extensions issuing \
   -startdate 20220101000000Z -enddate 20320101000000Z -out "$W/issuing.pem"
leaf() { # name keytype bits start end
  if [ "$2" = ec ]; then ec "$1"; else rsa "$1" "$3"; fi
  csr "$1" "/O=Hospital Example/CN=*.hospital.example"
  ca -cert "$W/issuing.pem" -keyfile "$W/issuing.key" -in "$W/$1.csr" -extensions leaf \
     -startdate "$4" -enddate "$5" -out "$W/$1.pem"
  der "$1"
}
leaf wildcard-ec ec 256 20250115000000Z 20260115000000Z
leaf wildcard-rsa rsa 2048 20241101000000Z 20251101000000Z
leaf expired-rsa rsa 2048 20220301000000Z 20240301000000Z
leaf expiring-ec ec 256 20240620000000Z 20250620000000Z
der issuing
der root

rsa legacy 1024; csr legacy "/O=Acme Imaging/CN=pacs-legacy.hospital.example"
ca -selfsign -keyfile "$W/legacy.key" -in "$W/legacy.csr" -extensions legacy -md sha1 \
   -startdate 20120101000000Z -enddate 20320101000000Z -out "$W/legacy-rsa1024.pem"
der legacy-rsa1024
ec device; csr device "/O=Acme Devices/CN=localhost"
ca -selfsign -keyfile "$W/device.key" -in "$W/device.csr" -extensions device \
   -startdate 20230301000000Z -enddate 20330301000000Z -out "$W/device-ec.pem"
der device-ec
ls -l ./*.der
