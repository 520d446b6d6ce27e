/* core/join.h — workers joining a control plane (kubeadm's TLS bootstrap).
 *
 * The control plane's bus PKI lives in DATA_DIR/pki: ca.crt/ca.key (the
 * cluster's bus CA, made at first start when a tls+tcp listener has no
 * bus.tls) and bus.crt/bus.key (the listener's certificate, its chain
 * carrying the CA so a joining worker can pin it). Bootstrap tokens
 * `[a-z0-9]{6}.[a-z0-9]{16}` are kept with their expiry in
 * DATA_DIR/bootstrap-tokens.csv (0600) and also written to the host's token
 * file as user system:bootstrap:<id>, group system:bootstrappers, whose only
 * right (built-in bus policy) is to call the `join` service.
 *
 * `kubus join HOST:PORT --token T --ca-hash sha256:H` dials the bus over
 * TLS with OpenSSL, refuses to go on unless a certificate of the server's
 * chain has the SubjectPublicKeyInfo hash H and the server certificate is
 * signed by it (nothing is sent before that), says hello with the token,
 * sends a CSR for a key made locally and gets back a certificate for
 * `node:<name>` (O=system:nodes), then writes DATA_DIR/worker.yaml.
 *
 * The `join` service (op `csr`, body {node, csr}) -> {cert, ca}, served by
 * the core endpoint of a host that has DATA_DIR/pki/ca.key. It refuses
 * revoked and expired tokens, and a node name already issued to another key
 * (DATA_DIR/pki/nodes.csv).
 */
#ifndef KUBUS_CORE_JOIN_H
#define KUBUS_CORE_JOIN_H

#include <stdbool.h>
#include <stddef.h>

struct kb_host;

/* Before listening: a host with a tls+tcp listener and no bus.tls gets the
 * PKI of DATA_DIR/pki; a host with a CA key serves `join`. */
int kb_join_prepare(struct kb_host *h, char *err, size_t errlen);

/* Bootstrap tokens in DATA_DIR/bootstrap-tokens.csv and the token file
 * (`kubus join token create|list|revoke`); create prints the token and the
 * CA hash. */
int kb_join_token_create(const char *data_dir, const char *token_file, long long ttl_s,
    char *err, size_t errlen);
int kb_join_token_list(const char *data_dir, char *err, size_t errlen);
int kb_join_token_revoke(const char *data_dir, const char *token_file, const char *what,
    char *err, size_t errlen);
/* "24h", "90m", "1h30m", "45s", "2d"; "0" never expires. */
int kb_join_parse_ttl(const char *s, long long *out);
/* [a-z0-9]{6}.[a-z0-9]{16} */
bool kb_join_token_shape(const char *t);
/* A DNS-1123 name of at most 63. */
bool kb_join_node_name_ok(const char *s);

/* `kubus join …` (argv[0] is "join"). Returns the exit status. */
int kb_join_cli(int argc, char **argv);

#endif
