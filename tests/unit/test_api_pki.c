/* tests/unit/test_api_pki.c — the API server's serving certificate
 * (plugins/apiserver/pki.c): it names the listen address and the
 * in-cluster names, it is issued again from the same CA when the names
 * it must carry change, and a client checking the listen IP accepts it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include "pki.h"

static X509 *parse(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(c);
	return c;
}

static bool has_ip(const char *pem, const char *ip)
{
	X509 *c = parse(pem);
	bool yes = X509_check_ip_asc(c, ip, 0) == 1;
	X509_free(c);
	return yes;
}

static bool has_dns(const char *pem, const char *name)
{
	X509 *c = parse(pem);
	/* No wildcards, no CN fallback: only a SAN that is exactly NAME. */
	bool yes = X509_check_host(c, name, 0,
	               X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS,
	               NULL) == 1;
	X509_free(c);
	return yes;
}

static bool signed_by(const char *pem, const char *ca_pem)
{
	X509 *c = parse(pem), *ca = parse(ca_pem);
	bool yes = X509_verify(c, X509_get0_pubkey(ca)) == 1;
	X509_free(c);
	X509_free(ca);
	return yes;
}

static void load(const char *dir, const struct api_pki_names *want, struct api_pki *out)
{
	char err[1024] = "";
	if (api_pki_load(dir, want, out, err, sizeof(err)) != 0)
		fail_msg("api_pki_load: %s", err);
	assert_non_null(out->ca_pem);
	assert_non_null(out->cert_pem);
	assert_non_null(out->key_pem);
}

static char *file_in(const char *dir, const char *name)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return kbt_slurp(path);
}

static void test_names(void **state)
{
	(void)state;
	char *dir = kbt_mkdtemp("pki");
	struct api_pki p;
	struct api_pki_names want = { .listen = "127.0.0.2:6443", .service_cidr = "10.96.0.0/12",
		.hosts = "extra.example.test,192.0.2.7" };
	load(dir, &want, &p);
	assert_null(p.reissued); /* made, not made again */
	assert_true(has_ip(p.cert_pem, "127.0.0.2"));
	assert_true(has_ip(p.cert_pem, "127.0.0.1"));
	assert_true(has_ip(p.cert_pem, "::1"));
	assert_true(has_ip(p.cert_pem, "10.96.0.1"));
	assert_true(has_ip(p.cert_pem, "192.0.2.7"));
	assert_false(has_ip(p.cert_pem, "10.96.0.0"));
	assert_false(has_ip(p.cert_pem, "127.0.0.3"));
	static const char *const dns[] = { "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		"extra.example.test" };
	for (size_t i = 0; i < sizeof(dns) / sizeof(dns[0]); i++)
		if (!has_dns(p.cert_pem, dns[i]))
			fail_msg("no DNS SAN %s", dns[i]);
	assert_false(has_dns(p.cert_pem, "kube-apiserver")); /* the CN is no SAN */
	assert_true(signed_by(p.cert_pem, p.ca_pem));
	api_pki_free(&p);

	/* A name, a v6 literal, another cluster domain and service CIDR. */
	struct api_pki_names other = { .listen = "api.example.test:443",
		.service_cidr = "172.30.16.0/20", .cluster_domain = "corp.internal" };
	load(dir, &other, &p);
	assert_non_null(p.reissued);
	assert_true(has_dns(p.cert_pem, "api.example.test"));
	assert_true(has_ip(p.cert_pem, "172.30.16.1"));
	assert_true(has_dns(p.cert_pem, "kubernetes.default.svc.corp.internal"));
	assert_false(has_ip(p.cert_pem, "127.0.0.2"));
	api_pki_free(&p);
	struct api_pki_names v6 = { .listen = "[fd00::5]:6443", .service_cidr = "fd00:96::/112" };
	load(dir, &v6, &p);
	assert_true(has_ip(p.cert_pem, "fd00::5"));
	assert_true(has_ip(p.cert_pem, "fd00:96::1"));
	api_pki_free(&p);
	kbt_rmrf(dir);
	free(dir);
}

/* The listen address changes: the serving certificate is made again from
 * the CA on disk, and not again while the names stay the same. */
static void test_reissue_on_listen_change(void **state)
{
	(void)state;
	char *dir = kbt_mkdtemp("pki");
	struct api_pki a, b, c, d;
	struct api_pki_names first = { .listen = "127.0.0.2:6443" };
	struct api_pki_names moved = { .listen = "10.1.2.3:6443" };
	load(dir, &first, &a);
	load(dir, &first, &b);
	assert_null(b.reissued);
	assert_string_equal(a.cert_pem, b.cert_pem);
	assert_string_equal(a.key_pem, b.key_pem);
	assert_false(has_ip(b.cert_pem, "10.1.2.3"));

	load(dir, &moved, &c);
	assert_non_null(c.reissued);
	print_message("reissued: %s\n", c.reissued);
	assert_non_null(strstr(c.reissued, "IP:10.1.2.3"));
	assert_string_equal(c.ca_pem, a.ca_pem); /* kubeconfigs stay valid */
	assert_string_not_equal(c.cert_pem, a.cert_pem);
	assert_string_not_equal(c.key_pem, a.key_pem);
	assert_true(has_ip(c.cert_pem, "10.1.2.3"));
	assert_true(signed_by(c.cert_pem, a.ca_pem));
	char *crt = file_in(dir, "server.crt"), *key = file_in(dir, "server.key");
	assert_string_equal(crt, c.cert_pem);
	assert_string_equal(key, c.key_pem);
	free(crt);
	free(key);

	load(dir, &moved, &d);
	assert_null(d.reissued);
	assert_string_equal(d.cert_pem, c.cert_pem);
	api_pki_free(&a);
	api_pki_free(&b);
	api_pki_free(&c);
	api_pki_free(&d);
	kbt_rmrf(dir);
	free(dir);
}

/* A certificate an older version made (only localhost and 127.0.0.1),
 * signed by the CA on disk: issued again, the CA kept. A serving key that
 * does not match its certificate: issued again too. */
static void test_reissue_old_cert(void **state)
{
	(void)state;
	char *dir = kbt_mkdtemp("pki");
	struct api_pki a, b, c;
	struct api_pki_names want = { .listen = "127.0.0.1:6443" };
	load(dir, &want, &a);
	char cmd[4096], *out = NULL;
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout server.key -out server.csr -subj /CN=kube-apiserver && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
	    "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	    "-days 365 -out server.crt -extfile san.ext",
	    dir);
	if (kbt_run(cmd, &out) != 0)
		fail_msg("openssl: %s", out ? out : "");
	free(out);
	char *old = file_in(dir, "server.crt");
	assert_false(has_dns(old, "kubernetes.default.svc"));
	load(dir, &want, &b);
	assert_non_null(b.reissued);
	print_message("reissued: %s\n", b.reissued);
	assert_non_null(strstr(b.reissued, "DNS:kubernetes"));
	assert_non_null(strstr(b.reissued, "IP:::1"));
	assert_string_equal(b.ca_pem, a.ca_pem);
	assert_string_not_equal(b.cert_pem, old);
	assert_true(has_dns(b.cert_pem, "kubernetes.default.svc.cluster.local"));
	assert_true(signed_by(b.cert_pem, a.ca_pem));
	free(old);

	/* Another key beside the certificate. */
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "-out server.key",
	    dir);
	out = NULL;
	if (kbt_run(cmd, &out) != 0)
		fail_msg("openssl: %s", out ? out : "");
	free(out);
	load(dir, &want, &c);
	assert_non_null(c.reissued);
	assert_non_null(strstr(c.reissued, "key"));
	assert_string_equal(c.ca_pem, a.ca_pem);
	api_pki_free(&a);
	api_pki_free(&b);
	api_pki_free(&c);
	kbt_rmrf(dir);
	free(dir);
}

/* 0.0.0.0 serves every IPv4 address of the host: each is named, and so
 * is the host name. */
static void test_wildcard(void **state)
{
	(void)state;
	char *dir = kbt_mkdtemp("pki");
	struct api_pki p;
	struct api_pki_names want = { .listen = "0.0.0.0:6443" };
	load(dir, &want, &p);
	struct ifaddrs *ifa = NULL;
	assert_int_equal(getifaddrs(&ifa), 0);
	int n = 0;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
			continue;
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, ip,
		    sizeof(ip));
		if (!has_ip(p.cert_pem, ip))
			fail_msg("no IP SAN %s (%s)", ip, i->ifa_name);
		n++;
	}
	freeifaddrs(ifa);
	assert_true(n >= 1);
	char hn[256] = "";
	assert_int_equal(gethostname(hn, sizeof(hn) - 1), 0);
	if (hn[0] && strspn(hn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") ==
	                 strlen(hn))
		assert_true(has_dns(p.cert_pem, hn));
	assert_false(has_ip(p.cert_pem, "0.0.0.0"));
	api_pki_free(&p);
	kbt_rmrf(dir);
	free(dir);
}

/* The whole server on 127.0.0.2, no `hosts`: curl, checking the name
 * against the CA, is served. */
static void test_https_on_listen_ip(void **state)
{
	(void)state;
	if (system("curl --version >/dev/null 2>&1") != 0) {
		print_message("skipped: no curl\n");
		skip();
	}
	char err[1024] = "";
	struct kbt_host *h =
	    kbt_api_host_start("listen: \"127.0.0.2:0\"", err, sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	char path[4200];
	snprintf(path, sizeof(path), "%s/admin.kubeconfig", kbt_host_data_dir(h));
	char *kc = kbt_slurp(path);
	assert_non_null(kc);
	char *url = strstr(kc, "server: ");
	assert_non_null(url);
	url += strlen("server: ");
	url[strcspn(url, " \t\r\n\"")] = '\0';
	assert_int_equal(strncmp(url, "https://127.0.0.2:", 18), 0);
	char cmd[8400], *out = NULL;
	snprintf(cmd, sizeof(cmd), "curl -sS --max-time 10 --cacert %s/apiserver/ca.crt %s/healthz",
	    kbt_host_data_dir(h), url);
	int rc = kbt_run(cmd, &out);
	print_message("%s: %s\n", cmd, out ? out : "");
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "ok"));
	free(out);
	free(kc);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_reissue_on_listen_change),
		cmocka_unit_test(test_reissue_old_cert),
		cmocka_unit_test(test_wildcard),
		cmocka_unit_test(test_https_on_listen_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
