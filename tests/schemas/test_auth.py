import jwt
import pytest
from pydantic import SecretStr, ValidationError

from schemas.auth import AuthError, Principal, mint_token, verify_token
from schemas.settings import DEV_JWT_SECRET, SettingsError, SharedSettings


def settings(**kw: object) -> SharedSettings:
    return SharedSettings.model_validate(kw)


def test_minted_token_verifies_to_its_principal() -> None:
    s = settings(jwt_secret=SecretStr("s" * 32))
    token = mint_token(s, tenant="acme", user_id="alice")
    assert verify_token(s, token) == Principal(user_id="alice", tenant="acme")


def test_dev_mode_uses_dev_secret_when_unset() -> None:
    token = mint_token(settings(), tenant="acme", user_id="alice")
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"], issuer="syncpipe")
    assert claims["tenant"] == "acme"
    assert claims["sub"] == "alice"


def test_prod_mode_without_secret_is_a_startup_error() -> None:
    with pytest.raises(ValidationError, match="SYNCPIPE_JWT_SECRET is required"):
        settings(env="prod")


def test_prod_rs256_needs_public_key() -> None:
    with pytest.raises(ValidationError, match="SYNCPIPE_JWT_PUBLIC_KEY"):
        settings(env="prod", jwt_algorithm="RS256")


def test_short_hs256_secret_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        settings(jwt_secret=SecretStr("short"))


def test_rs256_settings_cannot_mint() -> None:
    with pytest.raises(SettingsError, match="only HS256"):
        mint_token(
            settings(jwt_algorithm="RS256", jwt_public_key="k"), tenant="acme", user_id="alice"
        )


def test_expired_token_is_rejected_with_advice() -> None:
    s = settings(jwt_leeway_s=0)
    token = mint_token(s, tenant="acme", user_id="alice", ttl_s=10, now_s=1_000)
    with pytest.raises(AuthError, match="token expired"):
        verify_token(s, token)


def test_token_signed_with_another_secret_is_rejected() -> None:
    token = mint_token(settings(jwt_secret=SecretStr("1" * 32)), tenant="acme", user_id="alice")
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(settings(jwt_secret=SecretStr("2" * 32)), token)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "alice", "iss": "syncpipe", "exp": 4_000_000_000},
        {"tenant": "acme", "iss": "syncpipe", "exp": 4_000_000_000},
        {"sub": "alice", "tenant": "", "iss": "syncpipe", "exp": 4_000_000_000},
        {"sub": "alice", "tenant": "acme", "iss": "other", "exp": 4_000_000_000},
    ],
    ids=["no-tenant", "no-sub", "empty-tenant", "wrong-issuer"],
)
def test_token_missing_or_bad_claims_is_rejected(claims: dict[str, object]) -> None:
    token = jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256")
    with pytest.raises(AuthError):
        verify_token(settings(), token)


def test_empty_token_is_rejected() -> None:
    with pytest.raises(AuthError, match="missing bearer token"):
        verify_token(settings(), "")


def test_mint_rejects_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        mint_token(settings(), tenant="acme", user_id="alice", ttl_s=0)
