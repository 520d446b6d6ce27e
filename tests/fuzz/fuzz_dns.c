/* tests/fuzz/fuzz_dns.c — DNS query packets into the cluster DNS's answer
 * code (plugins/dns/answer.c through ldns): no crash, no leak, and every
 * response fits its buffer and echoes the query's id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/mp.h>

#include "dns.h"

static struct dns_zone zone;

static void setup(void)
{
	dns_zone_init(&zone, "cluster.local", 30);
	kb_body *b = kb_mp_body(
	    "{s:{s:s,s:s},s:{s:s,s:[{s:s,s:i},{s:s,s:i,s:s}]}}", "metadata",
	    "namespace", "default", "name", "web", "spec", "clusterIP",
	    "10.96.0.20", "ports", "name", "http", "port", 80, "name", "dns",
	    "port", 53, "protocol", "UDP");
	dns_zone_service(&zone, kb_body_obj(b), false);
	kb_body_unref(b);
	b = kb_mp_body("{s:{s:s,s:s,s:{s:s}},s:[{s:[s],s:s}]}", "metadata",
	    "namespace", "default", "name", "db-x", "labels",
	    "kubernetes.io/service-name", "db", "endpoints", "addresses",
	    "10.244.0.9", "hostname", "db-0");
	dns_zone_slice(&zone, kb_body_obj(b), false);
	kb_body_unref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static uint8_t out[65536];
	if (!ready) {
		setup();
		ready = 1;
	}
	static struct dns_cache *cache;
	static uint8_t again[65536];
	if (cache == NULL)
		cache = dns_cache_new();
	/* through the cache twice: a hit must give what the miss gave */
	size_t a = dns_answer(&zone, NULL, cache, data, size, out, sizeof(out),
	    false);
	size_t b = dns_answer(&zone, NULL, cache, data, size, again,
	    sizeof(again), false);
	if (a != b || memcmp(out, again, a))
		abort();
	for (int tcp = 0; tcp < 2; tcp++) {
		size_t n = dns_answer(&zone, NULL, NULL, data, size, out,
		    sizeof(out), tcp);
		if (n > sizeof(out) || (n > 0 && n < 12))
			abort();
		if (n > 0 && (out[0] != data[0] || out[1] != data[1]))
			abort();
		if (!tcp && n > 1232)
			abort();
	}
	return 0;
}
