/* tests/unit/test_dns.c — the cluster DNS plugin against a real resolver
 * client (dig, from bind9-dnsutils) and against malformed packets sent by
 * hand. Everything on 127.0.0.1: a host with store, API server and dns. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>
#include <kubus/mp.h>

#include "harness.h"

static struct kbt_host *host;
static kb_ctx *cli;
static int port, up_port;
static int up_fd = -1; /* the fake upstream's socket */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Whether port is free on 127.0.0.1 for type now. */
static bool port_free(int type, int port)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa,
	    sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* A loopback port free for TCP and UDP both, below the kernel's
 * ephemeral range. dig binds its source port at random in that range
 * with SO_REUSEADDR, as the DNS plugin's sockets are: had we taken the
 * port from the range, a dig whose source port came out equal to it
 * would be sent its own query back ("query response not set"). */
static int free_port(void)
{
	int lo = 32768, hi;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f != NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	if (lo <= 11024)
		return -1;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	for (int i = 0; i < 1000; i++) {
		int p = 10000 + rand() % (lo - 1 - 10000);
		if (port_free(SOCK_STREAM, p) && port_free(SOCK_DGRAM, p))
			return p;
	}
	return -1;
}

/* dig's answer for args ("+short NAME TYPE", …); malloc'd. */
static char *dig(const char *args)
{
	char cmd[512], *out = NULL;
	snprintf(cmd, sizeof(cmd),
	    "dig @127.0.0.1 -p %d +time=2 +tries=1 %s", port, args);
	kbt_run(cmd, &out);
	return out ? out : strdup("");
}

/* Poll dig until its output contains (or, with want false, lacks)
 * needle; the last output (malloc'd). */
static char *dig_until(const char *args, const char *needle, bool want)
{
	char *out = NULL;
	for (int i = 0; i < 100; i++) {
		free(out);
		out = dig(args);
		if ((strstr(out, needle) != NULL) == want)
			return out;
		sleep_ms(100);
	}
	return out;
}

/* Fail, showing what dig printed, when out lacks needle. */
static void expect_has(const char *out, const char *needle)
{
	if (strstr(out, needle) == NULL)
		fail_msg("expected \"%s\" in dig's output:\n%s", needle, out);
}

static void create(kb_body *b, const struct kb_gvr *r, char *ip,
    size_t iplen)
{
	kb_msg *rep = NULL;
	int rc = kb_api_create(cli, r, "default", b, &rep);
	if (rc) {
		const char *why = "";
		kb_msg_err(rep, &why);
		fail_msg("create: %d %s", rc, why ? why : "");
	}
	const char *s;
	size_t n;
	if (ip != NULL) {
		assert_true(kb_mp_str(kb_msg_body(rep), "spec.clusterIP", &s,
		    &n));
		assert_true(n < iplen);
		memcpy(ip, s, n);
		ip[n] = '\0';
	}
	kb_msg_free(rep);
}

static int setup(void **state)
{
	char err[1024], yaml[2048];
	port = free_port();
	if (port < 0)
		return -1;
	up_fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (up_fd < 0 || bind(up_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(up_fd, (struct sockaddr *)&sa, &sl))
		return -1;
	up_port = ntohs(sa.sin_port);
	snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "  - name: dns\n"
	    "    use: dns\n"
	    "    config:\n"
	    "      listen: [\"127.0.0.1:%d\"]\n"
	    "      upstream: \"127.0.0.1:%d\"\n"
	    "      upstream_timeout: 1s\n"
	    "      tcp_idle: 1s\n",
	    port, up_port);
	host = kbt_host_start(yaml, err, sizeof(err));
	if (host == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return -1;
	}
	const char *groups[] = { "system:masters" };
	cli = kbt_client(host, "tester", "tester", groups, 1);
	return cli == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	kbt_host_stop(host);
	if (up_fd >= 0)
		close(up_fd);
	return 0;
}

static void test_service_records(void **state)
{
	char ip[64], cmd[128];
	create(kb_mp_body("{s:s,s:s,s:{s:s},s:{s:{s:s},s:[{s:s,s:i,s:i}]}}",
		   "apiVersion", "v1", "kind", "Service", "metadata", "name",
		   "web", "spec", "selector", "app", "web", "ports", "name",
		   "http", "port", 80, "targetPort", 8080),
	    &KB_GVR_SERVICES, ip, sizeof(ip));

	char *out = dig_until("+short web.default.svc.cluster.local A", ip,
	    true);
	assert_string_equal(out, strcat(strcpy(cmd, ip), "\n"));
	free(out);
	/* case-insensitive, and the question's case echoed */
	out = dig("+noall +answer WeB.DeFault.SVC.cluster.LOCAL A");
	expect_has(out, "WeB.DeFault.SVC.cluster.LOCAL.");
	expect_has(out, ip);
	free(out);
	/* SRV for the named port */
	out = dig("+short _http._tcp.web.default.svc.cluster.local SRV");
	expect_has(out, "80 web.default.svc.cluster.local.");
	free(out);
	/* PTR of the ClusterIP */
	snprintf(cmd, sizeof(cmd), "+short -x %s", ip);
	out = dig(cmd);
	assert_string_equal(out, "web.default.svc.cluster.local.\n");
	free(out);
	/* the name exists, no AAAA: NODATA with the SOA */
	out = dig("web.default.svc.cluster.local AAAA");
	expect_has(out, "status: NOERROR");
	expect_has(out, "ANSWER: 0");
	expect_has(out, "AUTHORITY: 1");
	expect_has(out, "flags: qr aa");
	free(out);
	/* over TCP */
	out = dig("+tcp +short web.default.svc.cluster.local A");
	expect_has(out, ip);
	free(out);
	/* The answer cache takes plain queries (dig's cookie option keeps
	 * the ones above off it): without EDNS and with an option-less OPT,
	 * each sent often enough that every UDP worker holds the answer,
	 * and hits echo the id and the question's case. */
	static const char *const plain[] = { "+noedns", "+nocookie" };
	for (int i = 0; i < 16; i++) {
		snprintf(cmd, sizeof(cmd), "%s +noall +answer %s A",
		    plain[i % 2], i < 8 ? "web.default.svc.cluster.local" :
		    "WEB.default.Svc.cluster.local");
		out = dig(cmd);
		expect_has(out, i < 8 ?
		    "web.default.svc.cluster.local." :
		    "WEB.default.Svc.cluster.local.");
		expect_has(out, ip);
		free(out);
	}
	/* deleted: NXDOMAIN, from the cache too (the zone's generation) */
	assert_int_equal(kb_api_delete(cli, &KB_GVR_SERVICES, "default",
			     "web", NULL, NULL),
	    0);
	out = dig_until("web.default.svc.cluster.local A", "NXDOMAIN", true);
	expect_has(out, "status: NXDOMAIN");
	free(out);
	for (int i = 0; i < 8; i++) {
		snprintf(cmd, sizeof(cmd), "%s web.default.svc.cluster.local A",
		    plain[i % 2]);
		out = dig(cmd);
		expect_has(out, "status: NXDOMAIN");
		free(out);
	}
}

static void test_headless(void **state)
{
	create(kb_mp_body("{s:s,s:s,s:{s:s},s:{s:s,s:{s:s},s:[{s:s,s:i}]}}",
		   "apiVersion", "v1", "kind", "Service", "metadata", "name",
		   "db", "spec", "clusterIP", "None", "selector", "app", "db",
		   "ports", "name", "pg", "port", 5432),
	    &KB_GVR_SERVICES, NULL, 0);
	create(kb_mp_body("{s:s,s:s,s:{s:s,s:{s:s}},s:s,s:["
			  "{s:[s],s:{s:b},s:s},{s:[s],s:{s:b}},"
			  "{s:[s],s:{s:b}}],s:[{s:s,s:i,s:s}]}",
		   "apiVersion", "discovery.k8s.io/v1", "kind",
		   "EndpointSlice", "metadata", "name", "db-abc", "labels",
		   "kubernetes.io/service-name", "db", "addressType", "IPv4",
		   "endpoints", "addresses", "10.244.1.5", "conditions",
		   "ready", 1, "hostname", "db-0", "addresses", "10.244.1.6",
		   "conditions", "ready", 1, "addresses", "10.244.1.7",
		   "conditions", "ready", 0, "ports", "name", "pg", "port",
		   5432, "protocol", "TCP"),
	    &KB_GVR_ENDPOINTSLICES, NULL, 0);
	char *out = dig_until("+short db.default.svc.cluster.local A",
	    "10.244.1.6", true);
	expect_has(out, "10.244.1.5\n");
	expect_has(out, "10.244.1.6\n");
	assert_null(strstr(out, "10.244.1.7")); /* not ready */
	free(out);
	out = dig("+short db-0.db.default.svc.cluster.local A");
	assert_string_equal(out, "10.244.1.5\n");
	free(out);
	out = dig("+short _pg._tcp.db.default.svc.cluster.local SRV");
	expect_has(out, "5432 db-0.db.default.svc.cluster.local.");
	assert_non_null(
	    strstr(out, "5432 10-244-1-6.db.default.svc.cluster.local."));
	free(out);
	out = dig("+short -x 10.244.1.5");
	assert_string_equal(out, "db-0.db.default.svc.cluster.local.\n");
	free(out);
}

static void test_pods_and_negative(void **state)
{
	char *out = dig("+short 10-1-2-3.default.pod.cluster.local A");
	assert_string_equal(out, "10.1.2.3\n");
	free(out);
	out = dig("nope.default.svc.cluster.local A");
	expect_has(out, "status: NXDOMAIN");
	expect_has(out, "AUTHORITY: 1");
	expect_has(out, "SOA");
	free(out);
	out = dig("300-1-2-3.default.pod.cluster.local A");
	expect_has(out, "status: NXDOMAIN");
	free(out);
	out = dig("cluster.local SOA");
	expect_has(out, "ANSWER: 1");
	free(out);
	/* a namespace with a service is an empty non-terminal */
	out = dig("default.svc.cluster.local A");
	expect_has(out, "status: NOERROR");
	free(out);
}

/* A name outside the domain goes to the upstream (a socket of ours). */
static void test_upstream(void **state)
{
	char log[] = "/tmp/kbt-dns-dig-XXXXXX";
	int lfd = mkstemp(log);
	assert_true(lfd >= 0);
	close(lfd);
	char portarg[32];
	snprintf(portarg, sizeof(portarg), "-p%d", port);
	char *argv[] = { "/usr/bin/dig", "@127.0.0.1", portarg, "+time=3",
		"+tries=1", "+noedns", "+short", "example.org", "A", NULL };
	pid_t pid = kbt_spawn(argv, log);
	assert_true(pid > 0);
	uint8_t buf[512];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	struct pollfd pf = { .fd = up_fd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 5000), 1);
	ssize_t n = recvfrom(up_fd, buf, sizeof(buf), 0,
	    (struct sockaddr *)&from, &fl);
	assert_true(n > 12);
	/* answer: same question, one A record 192.0.2.1 (TEST-NET-1) */
	buf[2] |= 0x80;
	buf[3] = 0;
	buf[7] = 1;
	uint8_t rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2,
		1 };
	memcpy(buf + n, rr, sizeof(rr));
	sendto(up_fd, buf, (size_t)n + sizeof(rr), 0,
	    (struct sockaddr *)&from, fl);
	assert_int_equal(kbt_wait_pid(pid, 5000), 0);
	char *out = kbt_wait_file(log, "192.0.2.1", 1000);
	assert_non_null(out);
	free(out);
	unlink(log);
}

/* Raw packets: each gets FORMERR, NOTIMP or nothing — and the server
 * still answers afterwards. */
static int udp_ask(const uint8_t *q, size_t n, uint8_t *rep, size_t cap)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	sendto(fd, q, n, 0, (struct sockaddr *)&sa, sizeof(sa));
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int got = -1;
	if (poll(&pf, 1, 500) == 1)
		got = (int)recv(fd, rep, cap, 0);
	close(fd);
	return got;
}

static void test_malformed(void **state)
{
	uint8_t rep[4096];
	/* shorter than a header: dropped */
	uint8_t tiny[5] = { 1, 2, 0, 0, 0 };
	assert_int_equal(udp_ask(tiny, sizeof(tiny), rep, sizeof(rep)), -1);
	/* qdcount 1, no question: FORMERR (rcode 1) with our id */
	uint8_t noq[12] = { 0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(udp_ask(noq, sizeof(noq), rep, sizeof(rep)), 12);
	assert_int_equal(rep[0], 0xab);
	assert_int_equal(rep[3] & 0xf, 1);
	/* a compression pointer to itself */
	uint8_t loop[] = { 0, 7, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0,
		1, 0, 1 };
	assert_true(udp_ask(loop, sizeof(loop), rep, sizeof(rep)) >= 12);
	assert_int_equal(rep[3] & 0xf, 1);
	/* a label running past the end */
	uint8_t past[] = { 0, 8, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 60, 'a' };
	assert_true(udp_ask(past, sizeof(past), rep, sizeof(rep)) >= 12);
	assert_int_equal(rep[3] & 0xf, 1);
	/* opcode STATUS: NOTIMP (4) */
	uint8_t status[12] = { 0, 9, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(udp_ask(status, sizeof(status), rep, sizeof(rep)),
	    12);
	assert_int_equal(rep[3] & 0xf, 4);
	/* a response (QR set): dropped */
	uint8_t resp[12] = { 0, 10, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(udp_ask(resp, sizeof(resp), rep, sizeof(rep)), -1);
	/* oversized: 8 KiB of zeros after a header */
	static uint8_t big[8192];
	big[1] = 11;
	big[5] = 1;
	udp_ask(big, sizeof(big), rep, sizeof(rep));
	/* garbage */
	srand(7);
	for (int i = 0; i < 2000; i++) {
		uint8_t g[64];
		for (size_t k = 0; k < sizeof(g); k++)
			g[k] = (uint8_t)rand();
		g[2] &= 0x7f; /* a query, so it is parsed */
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET,
			.sin_port = htons((uint16_t)port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		sendto(fd, g, (size_t)(12 + rand() % 52), 0,
		    (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
	}
	/* TCP: a frame claiming 3 bytes is closed; a stalled half frame is
	 * closed after tcp_idle */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uint8_t frame[] = { 0, 3, 1, 2, 3 };
	assert_int_equal(write(fd, frame, sizeof(frame)), sizeof(frame));
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 2000), 1);
	assert_int_equal(read(fd, rep, sizeof(rep)), 0);
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uint8_t half[] = { 0, 40, 1, 2 };
	assert_int_equal(write(fd, half, sizeof(half)), sizeof(half));
	pf.fd = fd;
	assert_int_equal(poll(&pf, 1, 4000), 1);
	assert_int_equal(read(fd, rep, sizeof(rep)), 0);
	close(fd);
	/* still serving */
	char *out = dig("+short 10-9-8-7.x.pod.cluster.local A");
	assert_string_equal(out, "10.9.8.7\n");
	free(out);
}

int main(void)
{
	if (access("/usr/bin/dig", X_OK) != 0) {
		printf("SKIP: /usr/bin/dig missing (bind9-dnsutils)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_records),
		cmocka_unit_test(test_headless),
		cmocka_unit_test(test_pods_and_negative),
		cmocka_unit_test(test_upstream),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
