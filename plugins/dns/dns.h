/* plugins/dns/dns.h — what the cluster DNS plugin's files share.
 *
 * zone.c keeps the records of the cluster domain, built from Services and
 * EndpointSlices (one entry per service, the names it owns indexed in a
 * hash map); answer.c turns one query packet into one response packet
 * (ldns for the wire format); server.c runs the UDP workers and the TCP
 * thread; plugin.c reads the config and feeds the zone from informers.
 *
 * Locking: the zone has a read-write lock; queries hold it for reading
 * while they look names up and encode, informer handlers for writing.
 */
#ifndef KUBUS_DNS_H
#define KUBUS_DNS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include <kubus/strmap.h>

#define DNS_NAME_MAX 256 /* presentation form, no trailing dot, NUL */

struct dns_srv {
	uint16_t port;
	char *target; /* FQDN without the trailing dot */
};

/* The records of one owner name. */
struct dns_name {
	uint32_t *a; /* network byte order */
	size_t na;
	struct dns_srv *srv;
	size_t nsrv;
	char *ptr; /* PTR target, or NULL */
};

struct dns_zone {
	pthread_rwlock_t lock;
	char *domain; /* "cluster.local", lower case, no dots at the ends */
	uint32_t ttl;
	struct kb_strmap names; /* lower-case FQDN -> struct dns_name */
	struct kb_strmap svcs;  /* "ns/name" -> struct dns_svc (zone.c) */
	struct kb_strmap slices; /* "ns/name" of a slice -> struct dns_slice */
	struct kb_strmap nss;   /* namespace -> (void *)count of services */
	uint64_t gen;           /* bumped on every change */
};

int dns_zone_init(struct dns_zone *z, const char *domain, uint32_t ttl);
void dns_zone_fini(struct dns_zone *z);
/* Informer events (the zone locks itself). */
void dns_zone_service(struct dns_zone *z, const msgpack_object *svc,
    bool deleted);
void dns_zone_slice(struct dns_zone *z, const msgpack_object *slice,
    bool deleted);

/* Lookups, under the read lock held by the caller. name is lower case,
 * without the trailing dot. */
const struct dns_name *dns_zone_find(const struct dns_zone *z,
    const char *name);
/* Does name exist as an empty non-terminal (zone apex, svc.DOMAIN,
 * NS.svc.DOMAIN with services in NS, pod.DOMAIN, …)? */
bool dns_zone_exists(const struct dns_zone *z, const char *name);
/* A pod name "1-2-3-4.NS.pod.DOMAIN" -> its address; false otherwise. */
bool dns_zone_pod_addr(const struct dns_zone *z, const char *name,
    uint32_t *addr);

/* answer.c: the response to the query in q[qlen] into out[cap]; its
 * length, or 0 to send nothing (not a query, too short to answer).
 * `tcp` lifts the 512-byte UDP limit (EDNS raises it on UDP). */
struct dns_upstream;
struct dns_cache; /* per thread, may be NULL */
size_t dns_answer(struct dns_zone *z, const struct dns_upstream *up,
    struct dns_cache *c, const uint8_t *q, size_t qlen, uint8_t *out,
    size_t cap, bool tcp);
struct dns_cache *dns_cache_new(void);
void dns_cache_free(struct dns_cache *c);

/* Forwarding names outside the domain (answer.c): NULL means REFUSED. */
struct dns_upstream {
	char addr[64]; /* "IP:port" */
	int timeout_ms;
};

/* server.c */
struct dns_server;
struct dns_server_opts {
	char **listen; /* "IP:port", NULL-terminated */
	int udp_workers;
	int tcp_idle_ms;
	int tcp_max_conns;
};
int dns_server_start(struct dns_zone *z, const struct dns_upstream *up,
    const struct dns_server_opts *o, struct dns_server **out, char *err,
    size_t errlen);
void dns_server_stop(struct dns_server *s);

#endif
