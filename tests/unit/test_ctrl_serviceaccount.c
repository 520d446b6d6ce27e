/* tests/unit/test_ctrl_serviceaccount.c — the ServiceAccount controller
 * through a real host: every namespace has a `default` ServiceAccount
 * (also those from the start), a new namespace gets one, a deleted one
 * comes back, a bad config is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

static const char controllers[] = "  - name: ctrl-serviceaccount\n"
				  "    use: ctrl-serviceaccount\n"
				  "    config: {resync: 2s}\n";

static bool uid_of(struct ct *t, const char *ns, const char *name, char *buf,
    size_t len)
{
	kb_msg *m = NULL;
	const char *u;
	size_t ul;
	bool ok = kb_api_get(t->c, &KB_GVR_SERVICEACCOUNTS, ns, name, &m) ==
		0 &&
	    kb_mp_str(kb_msg_body(m), "metadata.uid", &u, &ul) && ul < len;
	if (ok)
		snprintf(buf, len, "%.*s", (int)ul, u);
	kb_msg_free(m);
	return ok;
}

static void test_default_serviceaccount(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	/* the namespaces the API server makes at its first start */
	const char *builtin[] = { "default", "kube-system", "kube-public",
		"kube-node-lease" };
	for (int i = 0; i < 4; i++)
		assert_true(CT_WAIT(10000,
		    ct_exists(&t, &KB_GVR_SERVICEACCOUNTS, builtin[i],
			"default")));

	kb_msg *m = ct_create(&t, &KB_GVR_NAMESPACES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Namespace", "metadata", "name", "team-a"));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(10000,
	    ct_exists(&t, &KB_GVR_SERVICEACCOUNTS, "team-a", "default")));
	/* only the configured accounts */
	assert_int_equal(ct_list(&t, &KB_GVR_SERVICEACCOUNTS, "team-a", NULL,
			     NULL, NULL),
	    1);

	/* deleted: recreated, as a new object */
	char uid1[64], uid2[64] = "";
	assert_true(uid_of(&t, "team-a", "default", uid1, sizeof(uid1)));
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_SERVICEACCOUNTS, "team-a",
			     "default", NULL, NULL),
	    0);
	assert_true(CT_WAIT(10000,
	    uid_of(&t, "team-a", "default", uid2, sizeof(uid2)) &&
		strcmp(uid1, uid2) != 0));
	ct_stop(&t);
}

static void test_configured_accounts(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t,
	    "  - name: sa\n"
	    "    use: ctrl-serviceaccount\n"
	    "    config: {service_accounts: [default, builder]}\n"));
	assert_true(CT_WAIT(10000,
	    ct_exists(&t, &KB_GVR_SERVICEACCOUNTS, "default", "builder") &&
		ct_exists(&t, &KB_GVR_SERVICEACCOUNTS, "default", "default")));
	ct_stop(&t);

	/* a name that cannot be a ServiceAccount: the host refuses to start */
	char err[1024];
	struct kbt_host *h = kbt_host_start(
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "  - name: sa\n"
	    "    use: ctrl-serviceaccount\n"
	    "    config: {service_accounts: [\"a/b\"]}\n",
	    err, sizeof(err));
	assert_null(h);
	assert_non_null(strstr(err, "not a valid ServiceAccount name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_serviceaccount),
		cmocka_unit_test(test_configured_accounts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
