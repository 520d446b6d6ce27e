/* sdk/src/msg.c — received messages and their accessors. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int64_t kb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One block: the message, then its dst and op. A fan-out makes one message
 * per subscriber and publication, and three allocations each (and three
 * frees on the receiver's thread) cost more than the routing around them. */
struct kb_msg *kb_msg_new(int type, struct kb_ident *who, const char *dst,
    const char *op, kb_body *body)
{
	if (dst == NULL)
		dst = "";
	if (op == NULL)
		op = "";
	size_t dn = strlen(dst) + 1, on = strlen(op) + 1;
	struct kb_msg *m = malloc(sizeof(*m) + dn + on);
	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->dst = memcpy((char *)(m + 1), dst, dn);
	m->op = memcpy(m->dst + dn, op, on);
	m->who = kb_ident_ref(who);
	m->body = body; /* the message takes the caller's reference */
	return m;
}

void kb_msg_free(kb_msg *m)
{
	if (m == NULL)
		return;
	kb_ident_unref(m->who);
	kb_body_unref(m->body);
	free(m->err_msg);
	free(m);
}

const char *kb_msg_op(const kb_msg *m) { return m->op; }
const char *kb_msg_dst(const kb_msg *m) { return m->dst; }
const char *kb_msg_src(const kb_msg *m) { return m->who ? m->who->endpoint : ""; }
const char *kb_msg_principal(const kb_msg *m) { return m->who ? m->who->user : ""; }
size_t kb_msg_ngroups(const kb_msg *m) { return m->who ? m->who->ngroups : 0; }

const char *kb_msg_group(const kb_msg *m, size_t i)
{
	return m->who && i < m->who->ngroups ? m->who->groups[i] : NULL;
}

bool kb_msg_in_group(const kb_msg *m, const char *group)
{
	return kb_ident_in_group(m->who, group);
}

const msgpack_object *kb_msg_body(const kb_msg *m)
{
	return kb_body_obj(m->body);
}

kb_body *kb_msg_body_ref(const kb_msg *m)
{
	return kb_body_ref(m->body);
}

kb_err kb_msg_err(const kb_msg *m, const char **message)
{
	if (message)
		*message = m->err_msg ? m->err_msg : "";
	return m->type == KB_T_ERR ? (kb_err)m->err : KB_OK;
}

int64_t kb_msg_remaining_ms(const kb_msg *m)
{
	if (m->deadline_ns == 0)
		return -1;
	int64_t left = (m->deadline_ns - kb_now_ns()) / 1000000;
	return left < 0 ? 0 : left;
}
