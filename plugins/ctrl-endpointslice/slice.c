/* plugins/ctrl-endpointslice/slice.c — one endpoint and one port set of an
 * EndpointSlice: read from an object, packed the one way this controller
 * writes them, compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"

const char *es_ep_id(const struct es_ep *e)
{
	return e->has_ref && e->uid[0] ? e->uid : e->ip;
}

void es_ep_parse(const msgpack_object *o, struct es_ep *e)
{
	memset(e, 0, sizeof(*e));
	sp_str(o, "addresses[0]", e->ip, sizeof(e->ip));
	sp_str(o, "nodeName", e->node, sizeof(e->node));
	sp_str(o, "hostname", e->host, sizeof(e->host));
	sp_str(o, "zone", e->zone, sizeof(e->zone));
	kb_mp_bool(o, "conditions.ready", &e->ready);
	kb_mp_bool(o, "conditions.serving", &e->serving);
	kb_mp_bool(o, "conditions.terminating", &e->terminating);
	const msgpack_object *ref = kb_mp_key(o, "targetRef");
	if (ref && ref->type == MSGPACK_OBJECT_MAP &&
	    kb_mp_streq(ref, "kind", "Pod")) {
		e->has_ref = true;
		sp_str(ref, "namespace", e->ns, sizeof(e->ns));
		sp_str(ref, "name", e->name, sizeof(e->name));
		sp_str(ref, "uid", e->uid, sizeof(e->uid));
	}
	const msgpack_object *addrs = kb_mp_key(o, "addresses");
	if (addrs && addrs->type == MSGPACK_OBJECT_ARRAY &&
	    addrs->via.array.size != 1)
		e->ip[0] = '\0'; /* not what this controller writes */
}

void es_ep_pack(msgpack_packer *pk, const struct es_ep *e)
{
	msgpack_pack_map(pk,
	    2 + !!e->node[0] + !!e->host[0] + !!e->zone[0] + e->has_ref);
	kb_mp_pack(pk, "s:[s], s:{s:b, s:b, s:b}", "addresses", e->ip,
	    "conditions", "ready", e->ready, "serving", e->serving,
	    "terminating", e->terminating);
	if (e->host[0])
		kb_mp_pack(pk, "s:s", "hostname", e->host);
	if (e->node[0])
		kb_mp_pack(pk, "s:s", "nodeName", e->node);
	if (e->zone[0])
		kb_mp_pack(pk, "s:s", "zone", e->zone);
	if (e->has_ref)
		kb_mp_pack(pk, "s:{s:s, s:s, s:s, s:s}", "targetRef", "kind",
		    "Pod", "namespace", e->ns, "name", e->name, "uid", e->uid);
}

bool es_ep_equal(const struct es_ep *a, const struct es_ep *b)
{
	return !strcmp(a->ip, b->ip) && !strcmp(a->node, b->node) &&
	    !strcmp(a->host, b->host) && !strcmp(a->zone, b->zone) &&
	    a->has_ref == b->has_ref && !strcmp(a->ns, b->ns) &&
	    !strcmp(a->name, b->name) && !strcmp(a->uid, b->uid) &&
	    a->ready == b->ready && a->serving == b->serving &&
	    a->terminating == b->terminating;
}

static int port_cmp(const void *x, const void *y)
{
	return sp_port_cmp(x, y);
}

void es_ports_pack(msgpack_packer *pk, struct sp_port *ports, size_t n)
{
	qsort(ports, n, sizeof(*ports), port_cmp);
	msgpack_pack_array(pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct sp_port *p = &ports[i];
		msgpack_pack_map(pk, 3 + p->has_app);
		kb_mp_pack(pk, "s:s, s:I, s:s", "name", p->name, "port",
		    p->port, "protocol", p->proto);
		if (p->has_app)
			kb_mp_pack(pk, "s:s", "appProtocol", p->app);
	}
}

size_t es_ports_parse(const msgpack_object *arr, struct sp_port *ports,
    size_t cap)
{
	size_t n = 0;
	for (uint32_t i = 0; arr && arr->type == MSGPACK_OBJECT_ARRAY &&
	     i < arr->via.array.size && n < cap;
	     i++) {
		const msgpack_object *o = &arr->via.array.ptr[i];
		struct sp_port *p = &ports[n++];
		memset(p, 0, sizeof(*p));
		sp_str(o, "name", p->name, sizeof(p->name));
		sp_str(o, "protocol", p->proto, sizeof(p->proto));
		if (!p->proto[0])
			strcpy(p->proto, "TCP");
		const char *s;
		size_t l;
		if (kb_mp_str(o, "appProtocol", &s, &l)) {
			snprintf(p->app, sizeof(p->app), "%.*s", (int)l, s);
			p->has_app = true;
		}
		kb_mp_int(o, "port", &p->port);
	}
	return n;
}
