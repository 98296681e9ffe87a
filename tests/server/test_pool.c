/* test_pool.c -- the compute pool's contract: jobs run once each, and a
 * borrowed worker takes no job until it is given back, so the computations
 * running at once never exceed the worker count. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <time.h>

#include "pool.h"

typedef struct counted_job {
    srv_job job; /* first member */
    atomic_int ran;
} counted_job;

static void counted_run(srv_job *job)
{
    atomic_fetch_add(&((counted_job *)job)->ran, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Waits up to 5 s for the job to have run; its run count. */
static int wait_ran(counted_job *j)
{
    int i;

    for (i = 0; i < 500 && atomic_load(&j->ran) == 0; i++)
        sleep_ms(10);
    return atomic_load(&j->ran);
}

/* The timeout every server suite uses: Criterion leaks a little when tests
 * with different timeouts run side by side under --jobs. */
TestSuite(pool, .timeout = 60);

Test(pool, a_borrowed_worker_takes_no_job_until_given_back)
{
    counted_job j = {.job = {.run = counted_run}};

    cr_assert_eq(srv_pool_start(1, 4), 0);
    cr_assert_eq(srv_pool_borrow(), 0, "the one worker is idle");
    cr_assert_eq(srv_pool_borrow(), -1, "no second idle worker");
    cr_assert_eq(srv_pool_busy(), 1, "a lent worker counts as busy");
    cr_assert_eq(srv_pool_reserve(), 0);
    srv_pool_submit(&j.job);
    sleep_ms(100);
    cr_assert_eq(atomic_load(&j.ran), 0,
                 "a job ran while its only worker was lent");
    cr_assert_eq(srv_pool_depth(), 1);
    srv_pool_return();
    cr_assert_eq(wait_ran(&j), 1, "the job runs once the worker is back");
    srv_pool_stop();
}

Test(pool, no_borrowing_while_jobs_wait)
{
    counted_job j = {.job = {.run = counted_run}};
    int i;

    cr_assert_eq(srv_pool_start(2, 4), 0);
    cr_assert_eq(srv_pool_borrow(), 0);
    cr_assert_eq(srv_pool_reserve(), 0);
    /* A reserved slot is a job on its way: a newcomer must queue behind
     * it rather than jump ahead on the second idle worker. */
    cr_assert_eq(srv_pool_borrow(), -1);
    srv_pool_submit(&j.job);
    cr_assert_eq(wait_ran(&j), 1, "the second worker runs the job");
    /* The worker counts itself idle when it comes back for the next job. */
    for (i = 0; i < 500 && srv_pool_borrow() != 0; i++)
        sleep_ms(10);
    cr_assert_lt(i, 500, "the second worker is lent again once idle");
    srv_pool_return();
    srv_pool_return();
    srv_pool_stop();
}

Test(pool, stopping_runs_every_queued_job)
{
    counted_job j[3];
    int i;

    cr_assert_eq(srv_pool_start(1, 4), 0);
    for (i = 0; i < 3; i++) {
        atomic_init(&j[i].ran, 0);
        j[i].job.run = counted_run;
        cr_assert_eq(srv_pool_reserve(), 0);
        srv_pool_submit(&j[i].job);
    }
    srv_pool_stop();
    for (i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&j[i].ran), 1, "job %d ran %d times", i,
                     atomic_load(&j[i].ran));
}
