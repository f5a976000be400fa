"""The campaign report: ``tunedeck report`` writes a campaign as Markdown in the seeds' style.

Above decisions (it quotes walks and the registry's history), below the CLI and the service;
it only reads.
"""
