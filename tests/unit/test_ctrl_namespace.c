/* tests/unit/test_ctrl_namespace.c — deleting a namespace: it is
 * Terminating while the namespace controller deletes everything in it,
 * then it is gone; other namespaces keep their objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

static const char controllers[] = "  - name: ctrl-namespace\n"
				  "    use: ctrl-namespace\n"
				  "    config: {resync: 2s, recheck: 200ms}\n";

static kb_body *cm(const char *name)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1",
	    "kind", "ConfigMap", "metadata", "name", name, "data", "k", "v");
}

static kb_body *pod(const char *name)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "spec",
	    "containers", "name", "c", "image", "busybox");
}

static void test_namespace_deletion(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	kb_msg *m = ct_create(&t, &KB_GVR_NAMESPACES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Namespace", "metadata", "name", "doomed"));
	assert_non_null(m);
	kb_msg_free(m);
	const char *names[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		assert_non_null(m = ct_create(&t, &KB_GVR_CONFIGMAPS, "doomed",
				    cm(names[i])));
		kb_msg_free(m);
		assert_non_null(
		    m = ct_create(&t, &KB_GVR_PODS, "doomed", pod(names[i])));
		kb_msg_free(m);
	}
	assert_non_null(
	    m = ct_create(&t, &KB_GVR_CONFIGMAPS, "default", cm("survivor")));
	kb_msg_free(m);

	assert_int_equal(kb_api_delete(t.c, &KB_GVR_NAMESPACES, NULL, "doomed",
			     NULL, NULL),
	    0);
	assert_true(
	    CT_WAIT(10000, !ct_exists(&t, &KB_GVR_NAMESPACES, NULL, "doomed")));
	assert_int_equal(ct_list(&t, &KB_GVR_PODS, "doomed", NULL, NULL, NULL),
	    0);
	assert_int_equal(ct_list(&t, &KB_GVR_CONFIGMAPS, "doomed", NULL, NULL,
			     NULL),
	    0);
	assert_true(ct_exists(&t, &KB_GVR_CONFIGMAPS, "default", "survivor"));

	/* the name can be used again */
	m = ct_create(&t, &KB_GVR_NAMESPACES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Namespace", "metadata", "name", "doomed"));
	assert_non_null(m);
	kb_msg_free(m);
	ct_stop(&t);
}

/* Without the controller the namespace stays Terminating. */
static void test_without_controller(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, ""));
	kb_msg *m = ct_create(&t, &KB_GVR_NAMESPACES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Namespace", "metadata", "name", "stuck"));
	assert_non_null(m);
	kb_msg_free(m);
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_NAMESPACES, NULL, "stuck",
			     NULL, NULL),
	    0);
	ct_sleep_ms(500);
	m = NULL;
	assert_int_equal(kb_api_get(t.c, &KB_GVR_NAMESPACES, NULL, "stuck", &m),
	    0);
	assert_true(kb_mp_streq(kb_msg_body(m), "status.phase", "Terminating"));
	kb_msg_free(m);
	ct_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namespace_deletion),
		cmocka_unit_test(test_without_controller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
