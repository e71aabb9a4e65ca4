"""`push_to_hub`: save into a temporary folder, then upload every file in one commit to a Hub repo.

Shared by every class with a `save_pretrained` (PyTorch / TF / Flax models, configs, generation configs,
tokenizers, image processors, processors, pipelines). It talks to the Hub only through `huggingface_hub`'s
`HfApi` (`create_repo`, `create_branch`, `create_commit`), built at call time so that the endpoint it uses is
`huggingface_hub.constants.ENDPOINT` then (HF_ENDPOINT, read by huggingface_hub when it is imported).
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)


class PushToHubError(OSError):
    """Creating the repo or uploading the commit failed; nothing was committed. Pushing again is safe."""


def default_commit_message(cls: type) -> str:
    """transformers 4.37's default, from the class name: "Upload model" / "config" / "tokenizer" / ..."""
    name = cls.__name__
    for part, what in (("Model", "model"), ("Config", "config"), ("Tokenizer", "tokenizer"),
                       ("FeatureExtractor", "feature extractor"), ("Processor", "processor")):
        if part in name:
            return f"Upload {what}"
    return f"Upload {name}"


def _network_errors(hub_error: type) -> tuple:
    """What a failed request raises: huggingface_hub's HTTP errors, the HTTP client's own base class (its
    connection errors, which huggingface_hub does not wrap; httpx's or requests' by version), OSError."""
    return (hub_error, OSError) + tuple(c for c in hub_error.__mro__ if c.__name__ in ("HTTPError", "RequestException"))


class PushToHubMixin:
    """Adds `push_to_hub` to a class that has `save_pretrained(save_directory, **kwargs)`.

    `_push_save_args`: which of push_to_hub's `max_shard_size` / `safe_serialization` the class's save_pretrained
    takes (models and pipelines; TF models only the first: they push tf_model.h5, as transformers' TF classes)."""

    _push_save_args: Tuple[str, ...] = ()

    def push_to_hub(
        self,
        repo_id: str,
        use_temp_dir: Optional[bool] = None,
        commit_message: Optional[str] = None,
        private: Optional[bool] = None,
        token: Optional[Union[bool, str]] = None,
        max_shard_size: Optional[Union[int, str]] = "5GB",
        create_pr: bool = False,
        safe_serialization: bool = True,
        revision: Optional[str] = None,
        commit_description: Optional[str] = None,
        tags: Optional[List[str]] = None,
        **deprecated_kwargs: Any,
    ):
        """Upload what `save_pretrained` writes to the Hub repo `repo_id` ("name" or "namespace/name"), created if
        needed, as ONE commit holding every file. Returns huggingface_hub's `CommitInfo`.

        Args:
            repo_id: the repo; a bare name goes to the namespace of the token's user.
            use_temp_dir: accepted for transformers' API; the files are always staged in a temporary folder
                (False, which in transformers saves into a local folder named like the repo, is refused).
            commit_message: default "Upload model" / "Upload config" / "Upload tokenizer" / "Upload processor".
            private: create the repo private (an existing repo keeps its visibility).
            token: the Hub token (True or None: the one saved by `huggingface-cli login` / HF_TOKEN).
            max_shard_size, safe_serialization: models only: the weight files' largest size and format
                (safetensors by default; TF models write tf_model.h5, as transformers' TF push_to_hub).
            create_pr: open a pull request with the commit instead of committing to the branch.
            revision: the branch to commit to, created (from main) if it does not exist.
            commit_description: the commit's longer description.
            tags: not supported (transformers writes them into a model card); pass None.

        Raises:
            PushToHubError: the Hub refused the repo or the commit (the underlying huggingface_hub error is its
                `__cause__`); nothing is committed, and the call can be repeated.
        """
        if not isinstance(repo_id, str) or not repo_id.strip("/"):
            raise ValueError(f"repo_id must be a Hub repo name such as 'user/model', got {repo_id!r}")
        if deprecated_kwargs:
            raise TypeError(f"push_to_hub got unexpected keyword arguments {sorted(deprecated_kwargs)} "
                            "(repo_url and organization are gone: put the namespace in repo_id)")
        if use_temp_dir is False:
            raise NotImplementedError("push_to_hub(use_temp_dir=False) is not supported: polyformer writes only into "
                                      "folders you name; save_pretrained(folder), then push_to_hub")
        if tags:
            raise NotImplementedError("push_to_hub(tags=...) is not supported (no model card is written)")
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError

        api = HfApi(token=token)
        message = commit_message if commit_message is not None else default_commit_message(type(self))
        given = {"max_shard_size": max_shard_size, "safe_serialization": safe_serialization}
        save_kwargs = {name: given[name] for name in self._push_save_args}
        with tempfile.TemporaryDirectory(prefix="polyformer-push-") as folder:
            self.save_pretrained(folder, **save_kwargs)
            files = sorted(os.path.relpath(os.path.join(root, name), folder)
                           for root, _, names in os.walk(folder) for name in names)
            operations = [CommitOperationAdd(path_in_repo=f.replace(os.sep, "/"), path_or_fileobj=os.path.join(folder, f))
                          for f in files]
            try:
                repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
                if revision is not None:
                    api.create_branch(repo_id, branch=revision, exist_ok=True)
                logger.info("uploading %s to %s: %s", type(self).__name__, repo_id, ", ".join(files))
                return api.create_commit(repo_id, operations, commit_message=message,
                                         commit_description=commit_description, revision=revision, create_pr=create_pr)
            except _network_errors(HfHubHTTPError) as error:
                raise PushToHubError(f"push_to_hub to {repo_id!r} at {api.endpoint} failed, nothing was committed "
                                     f"({len(files)} files: {', '.join(files)}): {error}") from error
