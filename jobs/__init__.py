"""RQ job functions (run by the worker, never imported by `helpdesk`).

The app enqueues jobs by dotted name with ids only, org id first (`helpdesk.services.tasks`);
each job enters its org's tenant scope through `jobs.context.org_session`. Periodic jobs are
listed once, in `jobs/cron.py`.
"""
