/* Shared bits of the check unit tests. */
#ifndef VD_UNIT_H
#define VD_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Runs the suite and returns the process exit code. */
static inline int
vd_unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
