"""The burst model: a discrete-event model (simpy) of the deployed stack under bursts of mail.

asl.py reads the definition (states, Choice, Wait, Retry, Catch); behaviour.py holds what the emulator measured
(each mail's profile, each function's durations) and serverless.yml's function settings; quotas.py the AWS and
third-party limits with their sources; stack.py the simulated services and the per-mail processes; measure.py the
measurement on the local emulator; scenarios.py and report.py the bench's burst-model and burst-model-check.
"""
