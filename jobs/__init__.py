"""RQ job functions (run by the worker, never imported by `helpdesk`).

The app enqueues jobs by dotted name with ids only, org id first; each job enters its org's
tenant scope. The job runner (worker, `rq cron`, SLA sweep, notification delivery) is built
by the background-jobs work; nothing is enqueued yet.
"""
