/* tests/scheduler/sched_test.h — objects for scheduler tests written as
 * JSON (jansson), turned into msgpack bodies as the API server stores
 * them. */
#ifndef SCHED_TEST_H
#define SCHED_TEST_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <kubus/kubus.h>

static void jpack(msgpack_packer *pk, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach((json_t *)j, k, v) {
			kb_mp_pack_cstr(pk, k);
			jpack(pk, v);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			jpack(pk, v);
		break;
	}
	case JSON_STRING:
		kb_mp_pack_cstr(pk, json_string_value(j));
		break;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		msgpack_pack_nil(pk);
		break;
	}
}

/* A body from JSON text; aborts on a syntax error (a bug in the test). */
static kb_body *jbody(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (j == NULL) {
		fprintf(stderr, "bad JSON in test: %s: %s\n", e.text, text);
		abort();
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	jpack(&pk, j);
	json_decref(j);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

#endif
