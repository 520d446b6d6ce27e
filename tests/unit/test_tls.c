/* tests/unit/test_tls.c — hosts joined over tls+tcp with mutual TLS: a
 * client certificate names the peer (CN = user, O = groups); a token works
 * too; certificates from another CA and peers without one are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certauth.h"
#include "conn.h"
#include "harness.h"
#include "host.h"

static const char *const plugin_groups[] = { "kubus:plugins", "kubus:kind:service" };

struct pki {
	char *dir;
	struct kbt_host *cp;
	char url[256];
};

static void sh(const char *dir, const char *cmd)
{
	char full[4096], *out = NULL;
	snprintf(full, sizeof(full), "cd %s && %s", dir, cmd);
	int rc = kbt_run(full, &out);
	if (rc != 0)
		fail_msg("%s: %s", cmd, out ? out : "");
	free(out);
}

/* A CA and a certificate signed by it: NAME.key, NAME.crt. */
static void make_cert(const char *dir, const char *ca, const char *name,
    const char *subj, const char *ext)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout %s.key -out %s.csr -subj '%s' && "
	    "printf '%s\\n' > %s.ext && "
	    "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial "
	    "-days 1 -out %s.crt -extfile %s.ext",
	    name, name, subj, ext, name, name, ca, ca, name, name);
	sh(dir, cmd);
}

static void make_ca(const char *dir, const char *name)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout %s.key -out %s.crt -subj '/CN=%s' -days 1", name, name, name);
	sh(dir, cmd);
}

static int setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));
	p->dir = kbt_mkdtemp("tls");
	make_ca(p->dir, "ca");
	make_ca(p->dir, "rogue-ca");
	make_cert(p->dir, "ca", "server", "/CN=localhost",
	    "subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth");
	make_cert(p->dir, "ca", "node1", "/O=system:nodes/O=workers/CN=node:node-1",
	    "extendedKeyUsage=clientAuth");
	make_cert(p->dir, "rogue-ca", "rogue", "/O=system:masters/CN=admin",
	    "extendedKeyUsage=clientAuth");
	char path[512];
	snprintf(path, sizeof(path), "%s/tokens.csv", p->dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "tls-token-0123456789abcdef,tokenuser,9,\"system:nodes\"\n");
	fclose(f);
	chmod(path, 0600);
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {name: cp, data_dir: %s}\n"
	    "bus:\n"
	    "  listen: [\"tls+tcp://127.0.0.1:0\"]\n"
	    "  tls: {cert: %s/server.crt, key: %s/server.key, ca: %s/ca.crt}\n"
	    "plugins:\n"
	    "  - {name: echo, use: echo}\n",
	    p->dir, p->dir, p->dir, p->dir);
	p->cp = kbt_host_start(yaml, err, sizeof(err));
	if (p->cp == NULL)
		fail_msg("control plane: %s", err);
	snprintf(p->url, sizeof(p->url), "%s", kb_net_listen_url(kbt_host_core(p->cp)->net, 0));
	assert_null(strstr(p->url, ":0"));
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pki *p = *state;
	kbt_host_stop(p->cp);
	kbt_rmrf(p->dir);
	free(p->dir);
	free(p);
	return 0;
}

static struct kbt_host *join(struct pki *p, const char *cert, const char *token,
    char *err, size_t errlen)
{
	char yaml[2048], tok[128] = "";
	if (token)
		snprintf(tok, sizeof(tok), "  join_token: %s\n", token);
	snprintf(yaml, sizeof(yaml),
	    "host: {name: node-1}\n"
	    "bus:\n"
	    "  join: \"%s\"\n"
	    "%s"
	    "  listen: []\n"
	    "  tls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt, server_name: localhost}\n",
	    p->url, tok, p->dir, cert, p->dir, cert, p->dir);
	return kbt_host_start(yaml, err, errlen);
}

static void test_cert_identity(void **state)
{
	struct pki *p = *state;
	char err[1024];
	struct kbt_host *w = join(p, "node1", NULL, err, sizeof(err));
	if (w == NULL)
		fail_msg("join: %s", err);
	kb_ctx *c = kbt_client(w, "t", "plugin:t", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(c, "echo", "whoami", NULL, 3000, &rep), 0);
	/* The control plane stamps the certificate's CN, not what the worker's
	 * own plugin is called. */
	assert_true(kb_mp_streq(kb_msg_body(rep), "principal", "node:node-1"));
	kb_msg_free(rep);
	kbt_host_stop(w);
}

static void test_token_over_tls(void **state)
{
	struct pki *p = *state;
	char err[1024];
	struct kbt_host *w = join(p, "node1", "tls-token-0123456789abcdef", err, sizeof(err));
	if (w == NULL)
		fail_msg("join: %s", err);
	kb_ctx *c = kbt_client(w, "t", "plugin:t", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(c, "echo", "whoami", NULL, 3000, &rep), 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "principal", "tokenuser"));
	kb_msg_free(rep);
	kbt_host_stop(w);
}

static void test_rogue_ca_refused(void **state)
{
	struct pki *p = *state;
	char err[1024];
	/* The rogue certificate fails mutual TLS itself (or, were it let
	 * through, the hello's chain check): either way no join. */
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
	    "bus:\n"
	    "  join: \"%s\"\n"
	    "  listen: []\n"
	    "  tls: {cert: %s/rogue.crt, key: %s/rogue.key, ca: %s/ca.crt, server_name: localhost}\n",
	    p->url, p->dir, p->dir, p->dir);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	assert_null(w);
	/* A plain tcp dial to a TLS port never says hello: also refused. */
	char url[256];
	snprintf(url, sizeof(url), "tcp://%s", p->url + strlen("tls+tcp://"));
	snprintf(yaml, sizeof(yaml), "bus: {join: \"%s\", join_token: x, listen: []}\n", url);
	w = kbt_host_start(yaml, err, sizeof(err));
	assert_null(w);
}

static void test_wrong_server_name(void **state)
{
	struct pki *p = *state;
	char err[1024], yaml[2048];
	snprintf(yaml, sizeof(yaml),
	    "bus:\n"
	    "  join: \"%s\"\n"
	    "  listen: []\n"
	    "  tls: {cert: %s/node1.crt, key: %s/node1.key, ca: %s/ca.crt, server_name: evil.example}\n",
	    p->url, p->dir, p->dir, p->dir);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	assert_null(w);
	printf("refused as expected: %s\n", err);
	assert_true(strstr(err, "cannot reach") || strstr(err, "refused"));
}

/* Several addresses, each checked against its own host name: the first
 * (127.0.0.1: the certificate names only localhost) is refused, the
 * second (localhost) joins; the other way round the first joins. */
static void test_server_name_per_address(void **state)
{
	struct pki *p = *state;
	char err[1024], yaml[2048], by_ip[256], by_name[256];
	const char *port = strrchr(p->url, ':') + 1;
	snprintf(by_ip, sizeof(by_ip), "tls+tcp://127.0.0.1:%s", port);
	snprintf(by_name, sizeof(by_name), "tls+tcp://localhost:%s", port);
	const char *orders[][2] = { { by_ip, by_name }, { by_name, by_ip } };
	for (int i = 0; i < 2; i++) {
		snprintf(yaml, sizeof(yaml),
		    "host: {name: node-1}\n"
		    "bus:\n"
		    "  join: [\"%s\", \"%s\"]\n"
		    "  listen: []\n"
		    "  tls: {cert: %s/node1.crt, key: %s/node1.key, ca: %s/ca.crt}\n",
		    orders[i][0], orders[i][1], p->dir, p->dir, p->dir);
		struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
		if (w == NULL)
			fail_msg("join %s: %s", orders[i][0], err);
		assert_string_equal(kb_net_uplink_url(kbt_host_core(w)->net), by_name);
		kb_ctx *c = kbt_client(w, "t", "plugin:t", plugin_groups, 2);
		kb_msg *rep;
		assert_int_equal(kb_call(c, "echo", "whoami", NULL, 3000, &rep), 0);
		kb_msg_free(rep);
		kbt_host_stop(w);
	}
	/* By address only: refused (the name check holds). */
	snprintf(yaml, sizeof(yaml),
	    "host: {name: node-1}\n"
	    "bus:\n"
	    "  join: [\"%s\"]\n"
	    "  listen: []\n"
	    "  tls: {cert: %s/node1.crt, key: %s/node1.key, ca: %s/ca.crt}\n",
	    by_ip, p->dir, p->dir, p->dir);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	if (w)
		kbt_host_stop(w);
	assert_null(w);
	printf("refused as expected: %s\n", err);
}

/* The hello's own check, below TLS: chain, signature, subject. */
static void test_cert_verify(void **state)
{
	struct pki *p = *state;
	uint8_t nonce[KB_NONCE_LEN] = { 1, 2, 3 };
	char crt[512], key[512], ca[512], err[256];
	snprintf(ca, sizeof(ca), "%s/ca.crt", p->dir);
	char *pem, *user, **groups;
	uint8_t *sig;
	size_t siglen, ng;

	snprintf(crt, sizeof(crt), "%s/node1.crt", p->dir);
	snprintf(key, sizeof(key), "%s/node1.key", p->dir);
	assert_int_equal(kb_cert_sign(crt, key, nonce, sizeof(nonce), &pem, &sig, &siglen,
	                     err, sizeof(err)), 0);
	assert_int_equal(kb_cert_verify(ca, pem, strlen(pem), nonce, sizeof(nonce), sig,
	                     siglen, &user, &groups, &ng, err, sizeof(err)), 0);
	assert_string_equal(user, "node:node-1");
	assert_int_equal(ng, 2);
	assert_string_equal(groups[0], "system:nodes");
	assert_string_equal(groups[1], "workers");
	free(user);
	free(groups[0]);
	free(groups[1]);
	free(groups);
	/* another nonce: the signature no longer matches */
	nonce[0] ^= 0xff;
	assert_int_equal(kb_cert_verify(ca, pem, strlen(pem), nonce, sizeof(nonce), sig,
	                     siglen, &user, &groups, &ng, err, sizeof(err)), KB_EUNAUTHORIZED);
	assert_non_null(strstr(err, "signature"));
	free(pem);
	free(sig);

	/* signed by another CA */
	snprintf(crt, sizeof(crt), "%s/rogue.crt", p->dir);
	snprintf(key, sizeof(key), "%s/rogue.key", p->dir);
	assert_int_equal(kb_cert_sign(crt, key, nonce, sizeof(nonce), &pem, &sig, &siglen,
	                     err, sizeof(err)), 0);
	assert_int_equal(kb_cert_verify(ca, pem, strlen(pem), nonce, sizeof(nonce), sig,
	                     siglen, &user, &groups, &ng, err, sizeof(err)), KB_EUNAUTHORIZED);
	assert_non_null(strstr(err, "not signed by the cluster CA"));
	free(pem);
	free(sig);
	/* not a certificate at all */
	assert_int_equal(kb_cert_verify(ca, "junk", 4, nonce, sizeof(nonce), (const uint8_t *)"x",
	                     1, &user, &groups, &ng, err, sizeof(err)), KB_EUNAUTHORIZED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cert_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_over_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rogue_ca_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_server_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_name_per_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_verify, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
