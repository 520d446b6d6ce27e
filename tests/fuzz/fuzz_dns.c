/* tests/fuzz/fuzz_dns.c — DNS query packets into the cluster DNS's answer
 * code (plugins/dns/answer.c through ldns): no crash, no leak, every
 * response fits its buffer and echoes the query's id, and an answer from
 * the cache equals the uncached one, also for a query that differs only
 * in what a hit patches (id, RD, the name's case, EDNS size and flags). */
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

static uint8_t variant[65536];

/* Change what a cache hit must patch or ignore: the id, RD, the case of
 * the question's letters, and a trailing OPT record's size and TTL. Every
 * access is bounds-checked: the input is arbitrary. */
static void vary(uint8_t *q, size_t n)
{
	if (n < 12)
		return;
	q[0] ^= 0x5a;
	q[1] ^= 0xa5;
	q[2] ^= 0x01;
	size_t i = 12;
	while (i < n && q[i] != 0 && q[i] <= 63) {
		size_t end = i + 1 + q[i];
		for (size_t j = i + 1; j < end && j < n; j++)
			if ((q[j] | 0x20) >= 'a' && (q[j] | 0x20) <= 'z')
				q[j] ^= 0x20;
		i = end;
	}
	/* an option-less OPT at the end: root, type 41, class, ttl, rdlen */
	if (n >= 12 + 11 && q[n - 11] == 0 && q[n - 10] == 0 &&
	    q[n - 9] == 41) {
		q[n - 8] ^= 0x10; /* size: 0 <-> 4096, 512 <-> 4608, ... */
		q[n - 6] ^= 0x01; /* extended rcode */
		q[n - 4] ^= 0x80; /* DO */
	}
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
	/* A query the cache takes for the same question (another id, RD
	 * flipped, the name's letters in other case, another EDNS size and
	 * flags) must get from it just what the uncached path gives it. */
	if (size <= sizeof(variant)) {
		memcpy(variant, data, size);
		vary(variant, size);
		a = dns_answer(&zone, NULL, cache, variant, size, out,
		    sizeof(out), false);
		b = dns_answer(&zone, NULL, NULL, variant, size, again,
		    sizeof(again), false);
		if (a != b || memcmp(out, again, a))
			abort();
	}
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
