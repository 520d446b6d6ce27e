/* tests/bench/dns/bench_dns.c — queries/s and p99 of the cluster DNS.
 *
 * A host (store-lmdb, API server, dns on 127.0.0.1) gets N services (10,000
 * by default) through the `api` service; once the last one answers, dnsperf
 * (Debian's) sends A queries for random service names for DURATION seconds
 * with many queries outstanding: its "Queries per second" is the figure.
 * A second, shorter run with -v gives every query's latency, for p99.
 *
 *   bench-dns [--services N] [--seconds S]
 * Last line: RESULT dns qps=N p99_ms=N
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <kubus/client.h>
#include <kubus/mp.h>

#include "harness.h"

static int nsvc = 10000, seconds = 10, port;
static kb_ctx *cli;

struct part {
	int from, to, failed;
};

static void *creator(void *arg)
{
	struct part *p = arg;
	for (int i = p->from; i < p->to; i++) {
		char name[32];
		snprintf(name, sizeof(name), "s%d", i);
		kb_body *b = kb_mp_body(
		    "{s:s,s:s,s:{s:s},s:{s:{s:s},s:[{s:s,s:i}]}}",
		    "apiVersion", "v1", "kind", "Service", "metadata", "name",
		    name, "spec", "selector", "app", name, "ports", "name",
		    "http", "port", 80);
		if (kb_api_create(cli, &KB_GVR_SERVICES, "default", b, NULL))
			p->failed++;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--services"))
			nsvc = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atoi(argv[i + 1]);
	}
	if (access("/usr/bin/dnsperf", X_OK) != 0) {
		fprintf(stderr, "bench-dns: /usr/bin/dnsperf missing "
				"(apt-get install dnsperf)\n");
		return 1;
	}
	port = kbt_free_port();
	char yaml[1024], err[1024];
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
	    "    config: {listen: [\"127.0.0.1:%d\"], udp_workers: 2}\n",
	    port);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	if (h == NULL) {
		fprintf(stderr, "bench-dns: host: %s\n", err);
		return 1;
	}
	const char *groups[] = { "system:masters" };
	cli = kbt_client(h, "bench", "bench", groups, 1);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	enum { T = 4 };
	pthread_t th[T];
	struct part parts[T];
	for (int i = 0; i < T; i++) {
		parts[i] = (struct part){ nsvc * i / T, nsvc * (i + 1) / T, 0 };
		pthread_create(&th[i], NULL, creator, &parts[i]);
	}
	int failed = 0;
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		failed += parts[i].failed;
	}
	if (failed) {
		fprintf(stderr, "bench-dns: %d creates failed\n", failed);
		kbt_host_stop(h);
		return 1;
	}
	char cmd[512], *out = NULL;
	snprintf(cmd, sizeof(cmd),
	    "dig @127.0.0.1 -p %d +short +time=1 s%d.default.svc.cluster.local",
	    port, nsvc - 1);
	for (int i = 0; i < 300; i++) {
		free(out);
		kbt_run(cmd, &out);
		if (out != NULL && strchr(out, '.') && !strstr(out, ";;"))
			break;
		usleep(100000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "bench-dns: %d services created and served in %.2f s\n",
	    nsvc, (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	free(out);

	char qfile[] = "/tmp/kbt-dnsq-XXXXXX";
	int qfd = mkstemp(qfile);
	FILE *q = fdopen(qfd, "w");
	srand(1);
	for (int i = 0; i < nsvc; i++)
		fprintf(q, "s%d.default.svc.cluster.local A\n", rand() % nsvc);
	fclose(q);

	/* throughput */
	snprintf(cmd, sizeof(cmd),
	    "dnsperf -s 127.0.0.1 -p %d -d %s -l %d -c 8 -T 2 -q 500 2>&1",
	    port, qfile, seconds);
	kbt_run(cmd, &out);
	double qps = 0, lost = 0;
	char *s = out ? strstr(out, "Queries per second:") : NULL;
	if (s != NULL)
		qps = atof(s + strlen("Queries per second:"));
	s = out ? strstr(out, "Queries lost:") : NULL;
	if (s != NULL)
		lost = atof(s + strlen("Queries lost:"));
	fprintf(stderr, "%s\n", out ? out : "");
	free(out);

	/* latency of every query of a shorter run at the same load */
	snprintf(cmd, sizeof(cmd),
	    "dnsperf -s 127.0.0.1 -p %d -d %s -l 3 -c 8 -T 2 -q 500 -v 2>&1",
	    port, qfile);
	kbt_run(cmd, &out);
	size_t n = 0, cap = 1 << 20;
	double *lat = malloc(cap * sizeof(*lat));
	for (char *line = out; line != NULL && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		/* "> NOERROR name A 0.000123" */
		if (line[0] == '>' && strncmp(line, "> T ", 4) && n < cap) {
			char *sp = strrchr(line, ' ');
			if (sp != NULL)
				lat[n++] = atof(sp + 1);
		}
		line = nl ? nl + 1 : NULL;
	}
	free(out);
	unlink(qfile);
	double p99 = 0;
	if (n > 0) {
		qsort(lat, n, sizeof(*lat), cmp_double);
		p99 = lat[(size_t)((double)(n - 1) * 0.99)] * 1000;
	}
	free(lat);
	kbt_host_stop(h);
	fprintf(stderr, "bench-dns: %zu latencies, lost %.0f\n", n, lost);
	if (qps <= 0 || n == 0) {
		fprintf(stderr, "bench-dns: no figures from dnsperf\n");
		return 1;
	}
	printf("RESULT dns qps=%.0f p99_ms=%.3f\n", qps, p99);
	return 0;
}
